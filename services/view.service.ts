// Service `view`: projects the event store into a view store and answers every query of the task list, the data
// pool and the process catalogue. Stores (VIEW_STORE): `postgres` (tables with indexes for every query; the
// default, on DATABASE_URL / VIEW_DATABASE_URL or the embedded PGlite database), `mongo` (MONGO_URL; Polyflow's
// mongo-view) and `memory` (rebuilt from the event store at every start).
//
// - A tracking processor ("view"). Shared stores (postgres, mongo): one instance in the cluster writes, every
//   instance answers from the shared store. `memory`: every instance projects its own copy (processor
//   "view@<node>"), so no node ever answers from an empty store.
// - Documents are written idempotently (domain/view/documents.ts); the token is kept next to them.
// - Every query accepts `minPosition` and waits, bounded, until the view has applied that global position.
// - After each batch the view broadcasts `view.changed`: what changed and which principals could see it
//   before and after, so that the gateway pushes to exactly those users.
// - `view.replay` rebuilds everything from position zero into a new generation of collections while the
//   current one keeps answering, then switches; no query sees a half-built generation.
import type { Context, ServiceSchema } from "moleculer";
import { TrackingProcessorMixin } from "../mixins/tracking-processor.mixin.ts";
import { readEnvironment } from "../lib/env.ts";
import { asDependencyOutage, consistencyTimeout, unavailable, validationError } from "../lib/errors.ts";
import { compareTokens, START_TOKEN } from "../lib/tokens.ts";
import { name } from "../lib/params.ts";
import type { RecordedEvent } from "../stores/event-store.ts";
import { MemoryViewStore, MongoViewStore, type Doc, type IndexSpec, type ViewCollection, type ViewStore } from "../stores/view-store.ts";
import { PostgresViewStore, UnsupportedFilterError } from "../stores/postgres-view-store.ts";
import { embeddedDatabaseDirectory } from "../stores/database.ts";
import {
  collections,
  dataEntryOf,
  decodeKeys,
  processDefinitionOf,
  processInstanceOf,
  processVariableOf,
  projectDataEntry,
  projectProcessDefinition,
  projectProcessInstance,
  projectProcessVariables,
  projectTask,
  taskOf,
  targetOf,
  type CollectionName,
  type DataEntryDocument,
  type ProcessDefinitionDocument,
  type ProcessInstanceDocument,
  type ProcessVariableDocument,
  type TaskDocument,
  type ViewEvent,
} from "../domain/view/documents.ts";
import { untilReachable } from "../lib/dependency-wait.ts";
import { and, FilterError, parseFilters, parseSort, type FilterTarget, type MongoFilter } from "../domain/view/filters.ts";
import {
  assignedState,
  assignedTo,
  candidateGroupOf,
  candidateOf,
  dataEntryVisibleTo,
  involving,
  live,
  startableBy,
  taskVisibleTo,
} from "../domain/view/authorization.ts";
import type { User } from "../domain/types.ts";

export type ViewStoreKind = "postgres" | "mongo" | "memory";

export interface ViewSettings {
  /** Which store; default VIEW_STORE, else mongo with MONGO_URL, else postgres. */
  store?: ViewStoreKind;
  /** PostgreSQL of the view (store postgres); default VIEW_DATABASE_URL, else DATABASE_URL; null = embedded PGlite. */
  databaseUrl?: string | null;
  /** The embedded database's directory; default DATA_DIR/pglite; "memory" = a private one in memory (tests). */
  pgliteDir?: string;
  /** PostgreSQL schema of the view (default "view"). */
  schema?: string;
  /** mongodb://… ; default MONGO_URL. */
  mongoUrl?: string | null;
  /** Database name (default: the URL's path, or "taskpool"). */
  database?: string;
  /** How long a query waits for its minPosition at most, ms. */
  consistencyTimeoutMs?: number;
  /** Old generations are dropped this long after a switch, so queries that started on them can finish. */
  dropDelayMs?: number;
}

export interface ViewChange {
  collection: CollectionName;
  id: string;
  change: "created" | "updated" | "deleted";
  /** Principals that could see the document before and after the change. */
  before: string[];
  after: string[];
  applicationName?: string;
  /** Set when the change is an engine's refusal of a user's interaction. */
  refusal?: { interaction: string; reason: string; username: string | null };
}

const INDEXES: Record<CollectionName, IndexSpec[]> = {
  tasks: [
    { keys: { authorizedPrincipals: 1, deleted: 1, createTime: -1 } },
    { keys: { deleted: 1, createTime: -1 } },
    { keys: { assignee: 1 } },
    { keys: { candidateGroups: 1 } },
    { keys: { applicationName: 1 } },
    { keys: { correlationIds: 1 } },
    { keys: { dueDate: 1 } },
  ],
  dataEntries: [
    { keys: { authorizedPrincipals: 1, deleted: 1, lastModifiedDate: -1 } },
    { keys: { entryType: 1 } },
    { keys: { involvedUsers: 1 } },
  ],
  processDefinitions: [{ keys: { authorizedPrincipals: 1, processDefinitionKey: 1 } }],
  processInstances: [{ keys: { state: 1 } }],
  processVariables: [{ keys: { processInstanceId: 1 } }],
};

// ---- params -------------------------------------------------------------------------------------------------------

const user = {
  type: "object",
  strict: "remove",
  props: { username: name, groups: { type: "array", items: { type: "string", min: 1 }, default: [] } },
};
const optionalUser = { ...user, optional: true };
const consistency = {
  minPosition: { type: "number", integer: true, min: 0, optional: true, convert: true },
  maxWaitMs: { type: "number", integer: true, min: 0, max: 60_000, optional: true, convert: true },
};
const paging = {
  page: { type: "number", integer: true, min: 0, default: 0, convert: true },
  size: { type: "number", integer: true, min: 1, max: 10_000, default: 1000, convert: true },
  sort: { type: "array", items: "string", optional: true },
  filters: { type: "array", items: "string", optional: true },
  // The version (generation:token) of an answer the caller keeps: the same version again answers
  // { unchanged: true, version } without running the query; given at all, an answer carries its `version`.
  knownVersion: { type: "string", max: 200, optional: true },
  ...consistency,
};
const flag = { type: "boolean", default: false, convert: true };

interface PagingParams {
  page: number;
  size: number;
  sort?: string[];
  filters?: string[];
  knownVersion?: string;
  minPosition?: number;
  maxWaitMs?: number;
}

function queryError(err: unknown): never {
  if (err instanceof FilterError) {
    throw validationError(err.message, [{ field: err.list, index: err.index, message: err.message }]);
  }
  throw err;
}

/** A store that cannot answer is a retryable 503, never an empty answer or a raw driver error. */
function storeError(err: unknown): unknown {
  if (err instanceof UnsupportedFilterError) return validationError(err.message, [{ field: "filters", message: err.message }]);
  return asDependencyOutage(err, "The view store");
}

const ViewService: ServiceSchema<ViewSettings> & { settings: ViewSettings } = {
  name: "view",
  mixins: [TrackingProcessorMixin({ processor: "view", batchSize: 500, pollIntervalMs: 1000, onError: "stop" })],
  settings: {},

  hooks: {
    error: {
      "*"(_ctx: Context, err: unknown) {
        throw storeError(err);
      },
    },
  },

  events: {
    "view.generationSwitched": {
      context: true,
      handler(this: any, ctx: Context<{ generation: number }>) {
        if (!this.processor.leased) this.metaCache = null;
        this.logger.info(`View generation ${ctx.params.generation} is live`);
      },
    },
    "view.changed": {
      context: true,
      handler(this: any, ctx: Context<{ token: string }>) {
        // Instances that do not write learn the applied position from the writer's broadcast.
        if (!this.processor.leased && ctx.params.token) this.observedToken = ctx.params.token;
        this.notifyWaiters();
      },
    },
  },

  actions: {
    // ---- tasks ----
    allTasks: {
      params: paging,
      async handler(ctx: Context<PagingParams>) {
        return this.pagedTasks(ctx.params, "task", []);
      },
    },
    tasksForUser: {
      params: { user, assignedToMeOnly: flag, involvementsOnly: flag, ...paging },
      async handler(ctx: Context<PagingParams & { user: User; assignedToMeOnly: boolean; involvementsOnly: boolean }>) {
        return this.pagedTasks(ctx.params, "task", await this.userTaskConditions(ctx.params));
      },
    },
    tasksForGroup: {
      params: { user, includeAssigned: flag, ...paging },
      async handler(ctx: Context<PagingParams & { user: User; includeAssigned: boolean }>) {
        return this.pagedTasks(ctx.params, "task", [candidateGroupOf(ctx.params.user), assignedState(ctx.params.includeAssigned)]);
      },
    },
    tasksForCandidateUserAndGroup: {
      params: { user, includeAssigned: { ...flag, default: true }, ...paging },
      async handler(ctx: Context<PagingParams & { user: User; includeAssigned: boolean }>) {
        const conditions = [candidateOf(ctx.params.user)];
        if (!ctx.params.includeAssigned) conditions.push(assignedState(false));
        return this.pagedTasks(ctx.params, "task", conditions);
      },
    },
    tasksForApplication: {
      params: { applicationName: name, ...paging },
      async handler(ctx: Context<PagingParams & { applicationName: string }>) {
        return this.pagedTasks(ctx.params, "task", [{ applicationName: ctx.params.applicationName }]);
      },
    },
    taskForId: {
      params: { id: name, user: optionalUser, ...consistency },
      async handler(ctx: Context<{ id: string; user?: User; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const doc = await this.findTask(ctx.params.id, ctx.params.user);
        return doc ? taskOf(doc) : null;
      },
    },
    allTasksWithDataEntries: {
      params: paging,
      async handler(ctx: Context<PagingParams>) {
        return this.pagedTasks(ctx.params, "taskWithDataEntries", []);
      },
    },
    tasksWithDataEntriesForUser: {
      params: { user, assignedToMeOnly: flag, involvementsOnly: flag, ...paging },
      async handler(ctx: Context<PagingParams & { user: User; assignedToMeOnly: boolean; involvementsOnly: boolean }>) {
        return this.pagedTasks(ctx.params, "taskWithDataEntries", await this.userTaskConditions(ctx.params), ctx.params.user);
      },
    },
    tasksWithDataEntriesForGroup: {
      params: { user, includeAssigned: flag, ...paging },
      async handler(ctx: Context<PagingParams & { user: User; includeAssigned: boolean }>) {
        const conditions = [candidateGroupOf(ctx.params.user), assignedState(ctx.params.includeAssigned)];
        return this.pagedTasks(ctx.params, "taskWithDataEntries", conditions, ctx.params.user);
      },
    },
    taskWithDataEntriesForId: {
      params: { id: name, user: optionalUser, ...consistency },
      async handler(ctx: Context<{ id: string; user?: User; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const doc = await this.findTask(ctx.params.id, ctx.params.user);
        if (!doc) return null;
        const [withEntries] = await this.joinDataEntries([doc], ctx.params.user);
        return withEntries;
      },
    },
    taskCountByApplication: {
      params: consistency,
      async handler(ctx: Context<{ minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const rows = await (await this.view("tasks")).countBy("applicationName", live);
        return rows
          .map((row: { value: unknown; count: number }) => ({ application: String(row.value), taskCount: row.count }))
          .sort((a: { application: string }, b: { application: string }) => (a.application < b.application ? -1 : a.application > b.application ? 1 : 0));
      },
    },
    taskAttributeNames: {
      params: { user: optionalUser, assignedToMeOnly: flag, ...consistency },
      async handler(ctx: Context<{ user?: User; assignedToMeOnly: boolean; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const docs: TaskDocument[] = await (await this.view("tasks")).find(and([live, ...this.visibleTaskConditions(ctx.params)]), { fields: ["payload"] });
        const names = new Set<string>();
        for (const doc of docs) for (const path of payloadPaths(decodeKeys(doc.payload))) names.add(path);
        const elements = [...names].sort();
        return { elements, totalElementCount: elements.length };
      },
    },
    taskAttributeValues: {
      params: { attributeName: { type: "string", min: 1, max: 500 }, user: optionalUser, assignedToMeOnly: flag, ...consistency },
      async handler(ctx: Context<{ attributeName: string; user?: User; assignedToMeOnly: boolean; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        let path: string;
        try {
          path = parseSort([`payload.${ctx.params.attributeName}`], "task", "")[0]![0];
        } catch (err) {
          throw validationError((err as Error).message, [{ field: "attributeName", message: (err as Error).message }]);
        }
        const values = await (await this.view("tasks")).distinct(path, and([live, ...this.visibleTaskConditions(ctx.params)]));
        const elements = values.filter((v: unknown) => v === null || typeof v !== "object").sort(compareValues);
        return { elements, totalElementCount: elements.length };
      },
    },

    // ---- data entries ----
    dataEntryForIdentity: {
      params: { entryType: name, entryId: name, user: optionalUser, ...consistency },
      async handler(ctx: Context<{ entryType: string; entryId: string; user?: User; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const conditions: MongoFilter[] = [live, { _id: `${ctx.params.entryType}#${ctx.params.entryId}` }];
        if (ctx.params.user) conditions.push(dataEntryVisibleTo(ctx.params.user));
        const [doc] = await (await this.view("dataEntries")).find(and(conditions), { limit: 1 });
        return doc ? dataEntryOf(doc as DataEntryDocument) : null;
      },
    },
    dataEntriesForType: {
      params: { entryType: name, ...paging },
      async handler(ctx: Context<PagingParams & { entryType: string }>) {
        return this.pagedDataEntries(ctx.params, [{ entryType: ctx.params.entryType }]);
      },
    },
    dataEntriesForUser: {
      params: { user, involvementsOnly: flag, ...paging },
      async handler(ctx: Context<PagingParams & { user: User; involvementsOnly: boolean }>) {
        const conditions = [dataEntryVisibleTo(ctx.params.user)];
        if (ctx.params.involvementsOnly) conditions.push(involving(ctx.params.user));
        return this.pagedDataEntries(ctx.params, conditions);
      },
    },
    dataEntries: {
      params: paging,
      async handler(ctx: Context<PagingParams>) {
        return this.pagedDataEntries(ctx.params, []);
      },
    },

    // ---- processes ----
    processDefinitionsStartableByUser: {
      params: { user, ...consistency },
      async handler(ctx: Context<{ user: User; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const docs = (await (await this.view("processDefinitions")).find(and([live, startableBy(ctx.params.user)]), {
          sort: [
            ["processDefinitionKey", 1],
            ["processDefinitionVersion", -1],
            ["_id", 1],
          ],
        })) as ProcessDefinitionDocument[];
        // The latest version of each key (across applications: a key belongs to one application).
        const latest = new Map<string, ProcessDefinitionDocument>();
        for (const doc of docs as ProcessDefinitionDocument[]) if (!latest.has(`${doc.applicationName}\u0000${doc.processDefinitionKey}`)) latest.set(`${doc.applicationName}\u0000${doc.processDefinitionKey}`, doc);
        return [...latest.values()].map(processDefinitionOf);
      },
    },
    processDefinitionsForApplication: {
      params: { applicationName: name, ...consistency },
      async handler(ctx: Context<{ applicationName: string; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const docs = await (await this.view("processDefinitions")).find(and([live, { applicationName: ctx.params.applicationName }]), {
          sort: [
            ["processDefinitionKey", 1],
            ["processDefinitionVersion", -1],
          ],
        });
        return docs.map((doc: Doc) => processDefinitionOf(doc as ProcessDefinitionDocument));
      },
    },
    processInstancesByState: {
      params: {
        states: { type: "array", items: { type: "enum", values: ["RUNNING", "SUSPENDED", "FINISHED", "CANCELLED"] }, min: 1 },
        page: paging.page,
        size: paging.size,
        ...consistency,
      },
      async handler(ctx: Context<{ states: string[]; page: number; size: number; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const filter = and([live, { state: { $in: ctx.params.states } }]);
        const { docs, total } = await this.page("processInstances", filter, { sort: [["_id", 1]], skip: ctx.params.page * ctx.params.size, limit: ctx.params.size });
        return { elements: docs.map((d: Doc) => processInstanceOf(d as ProcessInstanceDocument)), totalElementCount: total };
      },
    },
    processVariablesForInstance: {
      params: { processInstanceId: name, variableNames: { type: "array", items: "string", optional: true }, ...consistency },
      async handler(ctx: Context<{ processInstanceId: string; variableNames?: string[]; minPosition?: number; maxWaitMs?: number }>) {
        await this.awaitPosition(ctx.params);
        const conditions: MongoFilter[] = [live, { processInstanceId: ctx.params.processInstanceId }];
        if (ctx.params.variableNames && ctx.params.variableNames.length > 0) conditions.push({ variableName: { $in: ctx.params.variableNames } });
        const docs = await (await this.view("processVariables")).find(and(conditions), { sort: [["variableName", 1], ["_id", 1]] });
        return { variables: docs.map((d: Doc) => processVariableOf(d as ProcessVariableDocument)) };
      },
    },

    // ---- operations ----
    position: {
      async handler() {
        const meta = await this.readMeta();
        return { token: this.appliedToken(meta), globalPosition: meta.globalPosition ?? 0, generation: meta.generation, store: this.store.kind };
      },
    },
    status: {
      async handler() {
        const meta = await this.readMeta();
        return {
          store: this.store.kind,
          generation: meta.generation,
          token: this.appliedToken(meta),
          globalPosition: meta.globalPosition ?? 0,
          processor: { ...this.processor },
          replay: this.replayState ? { ...this.replayState } : null,
        };
      },
    },
    replay: {
      async handler(ctx: Context) {
        const forwarded = await this.forwardToLeaseHolder(ctx, "replay");
        if (forwarded.forwarded) return forwarded.result;
        if (!this.replayState || this.replayState.status !== "running") this.startReplay();
        return { ...this.replayState };
      },
    },
    replayStatus: {
      async handler(ctx: Context) {
        const forwarded = await this.forwardToLeaseHolder(ctx, "replayStatus");
        if (forwarded.forwarded) return forwarded.result;
        return this.replayState ? { ...this.replayState } : null;
      },
    },
  },

  methods: {
    // ---- storage and generations ----

    collectionName(collection: CollectionName, generation: number): string {
      return `${collection}_g${generation}`;
    },

    async readMeta(): Promise<{ generation: number; token: string; globalPosition: number }> {
      if (this.processor.leased && this.meta) return this.meta;
      if (this.metaCache && Date.now() - this.metaCache.at < 500) return this.metaCache.meta;
      const meta = (await this.store.getMeta("view")) ?? { generation: 1, token: START_TOKEN, globalPosition: 0 };
      this.metaCache = { at: Date.now(), meta };
      return meta;
    },

    async view(collection: CollectionName): Promise<ViewCollection> {
      const meta = await this.readMeta();
      return this.store.collection(this.collectionName(collection, meta.generation));
    },

    /**
     * One page and the total. Totals are kept per filter until the view moves on (its applied token changes):
     * counting every match is the expensive half of a page (every visible row, where the page needs 50), and a
     * task list asks the same question again and again between changes.
     */
    async page(collection: CollectionName, filter: MongoFilter, options: { sort?: [string, 1 | -1][]; skip?: number; limit?: number }) {
      const meta = await this.readMeta();
      const token = this.appliedToken(meta);
      const name = this.collectionName(collection, meta.generation);
      const key = `${name}\u0000${JSON.stringify(filter)}`;
      const cached = this.totals.get(key) as { token: string; total: number } | undefined;
      const knownTotal = cached && cached.token === token ? cached.total : undefined;
      const result = await this.store.collection(name).page(filter, { ...options, knownTotal });
      if (knownTotal === undefined) {
        if (this.totals.size >= 10_000) this.totals.clear();
        this.totals.set(key, { token, total: result.total });
      }
      return result;
    },

    async ensureIndexes(generation: number) {
      for (const collection of collections) await this.store.collection(this.collectionName(collection, generation)).ensureIndexes(INDEXES[collection]);
    },

    // ---- projection ----

    /** Applies a batch to one generation; returns what changed. */
    async applyEvents(events: RecordedEvent[], generation: number): Promise<ViewChange[]> {
      const viewEvents: ViewEvent[] = events.map((e) => ({
        type: e.type,
        data: e.data,
        streamId: e.streamId,
        streamVersion: e.streamVersion,
        globalPosition: e.globalPosition,
        recordedAt: e.recordedAt,
      }));
      const grouped = new Map<CollectionName, { event: ViewEvent; id: string }[]>();
      for (const event of viewEvents) {
        const target = targetOf(event);
        if (!target) continue;
        grouped.set(target.collection, [...(grouped.get(target.collection) ?? []), { event, id: target.id }]);
      }
      const changes: ViewChange[] = [];
      for (const [collection, items] of grouped) {
        const store = this.store.collection(this.collectionName(collection, generation));
        if (collection === "processVariables") {
          const instanceIds = [...new Set(items.map((i) => i.id))];
          const current = (await store.find({ processInstanceId: { $in: instanceIds } })) as ProcessVariableDocument[];
          const docs = new Map(current.map((d) => [d._id, d]));
          const written = new Map<string, ProcessVariableDocument>();
          for (const { event } of items) for (const doc of projectProcessVariables(docs, event)) written.set(doc._id, doc);
          await store.write([...written.values()]);
          for (const doc of written.values()) {
            changes.push({ collection, id: doc._id, change: doc.deleted ? "deleted" : "updated", before: [], after: [] });
          }
          continue;
        }
        const ids = [...new Set(items.map((i) => i.id))];
        const current = new Map<string, Doc>((await store.byIds(ids)).map((d: Doc) => [d._id, d]));
        const before = new Map<string, Doc | undefined>(ids.map((id) => [id, current.get(id)]));
        const touched = new Set<string>();
        const refusals = new Map<string, ViewChange["refusal"]>();
        for (const { event, id } of items) {
          const doc = current.get(id) ?? null;
          const next = this.project(collection, doc, event);
          if (next && next !== doc) {
            current.set(id, next);
            touched.add(id);
            if (event.type === "TaskInteractionRefused") {
              refusals.set(id, { interaction: event.data.interaction, reason: event.data.reason, username: event.data.username ?? null });
            }
          }
        }
        const docs = [...touched].map((id) => current.get(id)!);
        await store.write(docs);
        for (const doc of docs) {
          const old = before.get(doc._id);
          const existed = old !== undefined && !old.deleted;
          changes.push({
            collection,
            id: doc._id,
            change: doc.deleted ? "deleted" : existed ? "updated" : "created",
            before: existed ? old.authorizedPrincipals : [],
            after: doc.deleted ? [] : doc.authorizedPrincipals,
            ...(doc.applicationName ? { applicationName: doc.applicationName } : {}),
            ...(refusals.has(doc._id) ? { refusal: refusals.get(doc._id) } : {}),
          });
        }
      }
      return changes;
    },

    project(collection: CollectionName, doc: Doc | null, event: ViewEvent): Doc | null {
      switch (collection) {
        case "tasks":
          return projectTask(doc as TaskDocument | null, event) as Doc | null;
        case "dataEntries":
          return projectDataEntry(doc as DataEntryDocument | null, event) as Doc | null;
        case "processDefinitions":
          return projectProcessDefinition(doc as ProcessDefinitionDocument | null, event);
        case "processInstances":
          return projectProcessInstance(doc as ProcessInstanceDocument | null, event);
        default:
          return doc;
      }
    },

    /** Applies a batch and records its token with it, in one transaction where the store has them. */
    async handleEvents(events: RecordedEvent[]) {
      const last = events[events.length - 1]!;
      const meta = { ...this.meta, _id: "view", token: last.token, globalPosition: last.globalPosition };
      const apply = async () => {
        const changes = await this.applyEvents(events, meta.generation);
        await this.store.setMeta(meta);
        return changes;
      };
      const changes: ViewChange[] = this.store.atomically ? await this.store.atomically(apply) : await apply();
      this.meta = meta;
      this.pendingChanges.push(...changes);
    },

    async loadProcessorToken(): Promise<string> {
      await this.storeReady;
      const meta = (await this.store.getMeta("view")) ?? { _id: "view", generation: 1, token: START_TOKEN, globalPosition: 0 };
      this.meta = meta;
      await this.ensureIndexes(meta.generation);
      return meta.token;
    },

    async storeProcessorToken(token: string) {
      const last = this.lastToken(token);
      if (this.meta.token !== token) {
        // Not written with a batch (a reset, a replay's switch, a token moved over events the view skips).
        this.meta = { ...this.meta, _id: "view", token, globalPosition: last };
        await this.store.setMeta(this.meta);
      }
      const changes: ViewChange[] = this.pendingChanges.splice(0);
      if (changes.length > 0 || token !== START_TOKEN) {
        void this.broker.broadcast(`${this.name}.changed`, { token, globalPosition: last, generation: this.meta.generation, changes });
      }
      this.notifyWaiters();
    },

    lastToken(token: string): number {
      return Number(token.split(":")[1]);
    },

    async onProcessorReset() {
      // A reset rebuilds the current generation in place (replay builds a new one instead).
      await this.store.drop(collections.map((c) => this.collectionName(c, this.meta.generation)));
      await this.ensureIndexes(this.meta.generation);
    },

    // ---- consistency ----

    appliedToken(meta: { token: string }): string {
      if (this.processor.leased) return this.meta.token;
      if (this.observedToken && compareTokens(this.observedToken, meta.token) > 0) return this.observedToken;
      return meta.token;
    },

    notifyWaiters() {
      for (const wake of this.waiters.splice(0)) wake();
    },

    /** Waits until the view has applied the event at `minPosition` (bounded by maxWaitMs). */
    async awaitPosition(params: { minPosition?: number; maxWaitMs?: number }) {
      const position = params.minPosition;
      if (!position) return;
      const deadline = Date.now() + (params.maxWaitMs ?? this.settings.consistencyTimeoutMs!);
      let target: string | null = this.positionTokens.get(position) ?? null;
      for (;;) {
        if (!target) {
          target = ((await this.broker.call("eventstore.tokenOf", { globalPosition: position })) as { token: string | null }).token;
          if (target) this.positionTokens.set(position, target);
          if (this.positionTokens.size > 10_000) this.positionTokens.clear();
        }
        if (target) {
          this.metaCache = null;
          const applied = this.appliedToken(await this.readMeta());
          if (compareTokens(applied, target) >= 0) return;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw consistencyTimeout(`The view has not reached position ${position} yet`, { minPosition: position });
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(remaining, 100));
          this.waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },

    // ---- query helpers ----

    visibleTaskConditions(params: { user?: User; assignedToMeOnly?: boolean }): MongoFilter[] {
      if (!params.user) return [];
      return [params.assignedToMeOnly ? assignedTo(params.user) : taskVisibleTo(params.user)];
    },

    /** TasksForUser: visible, or assigned only, or the user's involvements (never beyond what is visible). */
    async userTaskConditions(params: { user: User; assignedToMeOnly: boolean; involvementsOnly: boolean }): Promise<MongoFilter[]> {
      const { user } = params;
      if (params.involvementsOnly) {
        const involvedIds = await (await this.view("dataEntries")).distinct("_id", and([live, involving(user), dataEntryVisibleTo(user)]));
        return [taskVisibleTo(user), { $or: [assignedTo(user), { correlationIds: { $in: involvedIds } }] }];
      }
      return [params.assignedToMeOnly ? assignedTo(user) : taskVisibleTo(user)];
    },

    async findTask(id: string, user?: User): Promise<TaskDocument | null> {
      const conditions: MongoFilter[] = [live, { _id: id }];
      if (user) conditions.push(taskVisibleTo(user));
      const [doc] = await (await this.view("tasks")).find(and(conditions), { limit: 1 });
      return (doc as TaskDocument) ?? null;
    },

    async pagedTasks(params: PagingParams, target: FilterTarget, conditions: MongoFilter[], user?: User) {
      await this.awaitPosition(params);
      const version = params.knownVersion === undefined ? undefined : await this.answerVersion();
      if (version !== undefined && version === params.knownVersion) return { unchanged: true, version };
      let parsed;
      let sort;
      try {
        parsed = parseFilters(params.filters, target);
        sort = parseSort(params.sort, "task", "-createTime");
      } catch (err) {
        queryError(err);
      }
      const where: MongoFilter[] = [live, ...conditions, ...parsed.where];
      if (parsed.dataWhere.length > 0) {
        const visible = user ? [dataEntryVisibleTo(user)] : [];
        const ids = await (await this.view("dataEntries")).distinct("_id", and([live, ...visible, ...parsed.dataWhere]));
        where.push({ correlationIds: { $in: ids } });
      }
      const filter = and(where);
      const { docs, total } = await this.page("tasks", filter, { sort, skip: params.page * params.size, limit: params.size });
      const elements = target === "task" ? (docs as TaskDocument[]).map(taskOf) : await this.joinDataEntries(docs as TaskDocument[], user);
      return { elements, totalElementCount: total, ...(version === undefined ? {} : { version }) };
    },

    /**
     * What an answer of the view is computed from: its generation and the token it has applied (`knownVersion`).
     * Read before the query, so an answer is never older than the version it is given.
     */
    async answerVersion(): Promise<string> {
      const meta = await this.readMeta();
      return `${meta.generation}:${this.appliedToken(meta)}`;
    },

    /** Each task with the data entries it correlates to — only those the user may see, when a user asks. */
    async joinDataEntries(docs: TaskDocument[], user?: User) {
      const ids = [...new Set(docs.flatMap((d) => d.correlationIds))];
      const conditions: MongoFilter[] = [live, { _id: { $in: ids } }];
      if (user) conditions.push(dataEntryVisibleTo(user));
      const entries = ids.length === 0 ? [] : ((await (await this.view("dataEntries")).find(and(conditions))) as DataEntryDocument[]);
      const byId = new Map(entries.map((e) => [e._id, e]));
      return docs.map((doc) => ({
        task: taskOf(doc),
        dataEntries: doc.correlationIds.map((id) => byId.get(id)).filter((e): e is DataEntryDocument => !!e).map(dataEntryOf),
      }));
    },

    async pagedDataEntries(params: PagingParams, conditions: MongoFilter[]) {
      await this.awaitPosition(params);
      const version = params.knownVersion === undefined ? undefined : await this.answerVersion();
      if (version !== undefined && version === params.knownVersion) return { unchanged: true, version };
      let parsed;
      let sort;
      try {
        parsed = parseFilters(params.filters, "dataEntry");
        sort = parseSort(params.sort, "dataEntry", "-lastModifiedDate");
      } catch (err) {
        queryError(err);
      }
      const filter = and([live, ...conditions, ...parsed.where]);
      const { docs, total } = await this.page("dataEntries", filter, { sort, skip: params.page * params.size, limit: params.size });
      return { elements: (docs as DataEntryDocument[]).map(dataEntryOf), totalElementCount: total, ...(version === undefined ? {} : { version }) };
    },

    // ---- replay ----

    startReplay() {
      const from = this.meta.generation;
      const generation = from + 1;
      const state = {
        status: "running" as "running" | "done" | "failed",
        fromGeneration: from,
        generation,
        startedAt: new Date().toISOString(),
        finishedAt: null as string | null,
        eventsApplied: 0,
        eventsPerSecond: 0,
        globalPosition: 0,
        headPosition: 0,
        percent: 0,
        error: null as string | null,
      };
      this.replayState = state;
      const started = Date.now();
      let token = START_TOKEN;
      const apply = async (events: RecordedEvent[]) => {
        // One transaction per batch where the store has them: one commit instead of one per statement.
        if (this.store.atomically) await this.store.atomically(() => this.applyEvents(events, generation));
        else await this.applyEvents(events, generation);
        token = events[events.length - 1]!.token;
        state.eventsApplied += events.length;
        state.globalPosition = events[events.length - 1]!.globalPosition;
        state.eventsPerSecond = Math.round(state.eventsApplied / Math.max(0.001, (Date.now() - started) / 1000));
        state.percent = state.headPosition > 0 ? Math.min(100, Math.round((state.globalPosition / state.headPosition) * 1000) / 10) : 100;
      };
      const drain = async () => {
        for (;;) {
          const batch = (await this.broker.call("eventstore.readAll", { after: token, limit: 1000 })) as { events: RecordedEvent[]; caughtUp: boolean };
          if (batch.events.length > 0) await apply(batch.events);
          if (batch.caughtUp) return;
        }
      };
      const run = async () => {
        state.headPosition = ((await this.broker.call("eventstore.head")) as { globalPosition: number }).globalPosition;
        await this.store.drop(collections.map((c) => this.collectionName(c, generation)));
        await this.ensureIndexes(generation);
        this.logger.info(`View replay into generation ${generation} started (head at #${state.headPosition})`);
        await drain();
        // Between two live batches: catch up the rest, then switch; the live processor continues from there.
        await this.runBetweenBatches(async () => {
          await drain();
          // The switch itself is the new generation in the view's meta (stored even when the token did not move:
          // a node that starts later must read generation N+1, never the old one that is about to be dropped).
          this.meta = { ...this.meta, _id: "view", generation, token, globalPosition: state.globalPosition };
          await this.store.setMeta(this.meta);
          await this.moveProcessorToken(token, state.globalPosition);
        });
        state.status = "done";
        state.percent = 100;
        state.finishedAt = new Date().toISOString();
        void this.broker.broadcast(`${this.name}.generationSwitched`, { generation });
        this.logger.info(`View generation ${generation} is live: ${state.eventsApplied} events replayed at ${state.eventsPerSecond} events/s`);
        setTimeout(() => {
          void this.store.drop(collections.map((c) => this.collectionName(c, from))).catch(() => undefined);
        }, this.settings.dropDelayMs).unref();
      };
      run().catch((err: Error) => {
        state.status = "failed";
        state.error = err.message;
        this.logger.error(`View replay into generation ${generation} failed`, err);
      });
    },
  },

  created() {
    const env = readEnvironment();
    const s = this.settings;
    s.mongoUrl = s.mongoUrl === undefined ? env.mongoUrl : s.mongoUrl;
    s.store = s.store ?? env.viewStore ?? (s.mongoUrl ? "mongo" : "postgres");
    s.databaseUrl = s.databaseUrl === undefined ? (env.viewDatabaseUrl ?? env.databaseUrl) : s.databaseUrl;
    s.pgliteDir = s.pgliteDir ?? embeddedDatabaseDirectory(env.dataDir);
    s.schema = s.schema ?? "view";
    if (s.store === "mongo" && !s.mongoUrl) throw new Error("VIEW_STORE=mongo needs MONGO_URL");
    if (s.store === "memory") {
      // Each node projects its own copy: a processor of its own, never a standby that answers from nothing.
      this.processorSettings.processor = `${this.processorSettings.processor}@${this.broker.nodeID}`;
      this.processor.name = this.processorSettings.processor;
    }
    s.consistencyTimeoutMs = s.consistencyTimeoutMs ?? 10_000;
    s.dropDelayMs = s.dropDelayMs ?? 30_000;
    this.pendingChanges = [];
    this.totals = new Map<string, { token: string; total: number }>();
    this.waiters = [];
    this.positionTokens = new Map<number, string>();
    this.meta = { _id: "view", generation: 1, token: START_TOKEN, globalPosition: 0 };
    this.metaCache = null;
    this.observedToken = null;
    this.replayState = null;
    let markReady!: () => void;
    this.storeReady = new Promise<void>((resolve) => (markReady = resolve));
    this.markStoreReady = markReady;
  },

  async started() {
    const s = this.settings;
    this.store = await openViewStore(s, (message) => this.logger.warn(message));
    this.markStoreReady();
    const where = { mongo: "MongoDB", memory: "in memory (rebuilt from the event store at start)", postgres: s.databaseUrl ? `PostgreSQL, schema ${s.schema}` : `the embedded database, schema ${s.schema}` };
    this.logger.info(`View store: ${where[this.store.kind as ViewStoreKind]}`);
  },

  async stopped() {
    // The processor first: its batch in flight still writes to the store.
    await this.stopProcessorLoop();
    await this.store?.close();
  },
};

async function openViewStore(s: ViewSettings, log: (message: string) => void): Promise<ViewStore> {
  try {
    // A MongoDB that is not up yet is waited for, like a server PostgreSQL (stores/database.ts).
    if (s.store === "mongo") return await untilReachable("MongoDB (view store)", () => MongoViewStore.connect(s.mongoUrl!, s.database), log);
    if (s.store === "memory") return new MemoryViewStore();
    return await PostgresViewStore.open({ url: s.databaseUrl ?? null, pgliteDir: s.databaseUrl || s.pgliteDir === "memory" ? null : s.pgliteDir!, schema: s.schema });
  } catch (err) {
    const where = s.store === "mongo" ? s.mongoUrl : s.databaseUrl ?? s.pgliteDir;
    throw unavailable(`The view store (${s.store}) at ${where} cannot be opened: ${(err as Error).message}`);
  }
}

/** Every path to a primitive value in a payload, nested keys joined by ".". */
function payloadPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object") return prefix ? [prefix] : [];
  if (Array.isArray(value)) return value.flatMap((item) => payloadPaths(item, prefix));
  return Object.entries(value).flatMap(([key, item]) => payloadPaths(item, prefix ? `${prefix}.${key}` : key));
}

function rank(value: unknown): number {
  return value === null ? 0 : typeof value === "number" ? 1 : typeof value === "string" ? 2 : 3;
}

function compareValues(a: unknown, b: unknown): number {
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  return (a as number | string) < (b as number | string) ? -1 : (a as number | string) > (b as number | string) ? 1 : 0;
}

export default ViewService;
