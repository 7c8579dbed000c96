// The view's queries: the paged task, data-entry and process queries, each waiting for its `minPosition` first,
// filters and sorts turned into store calls (view/filters.ts), tasks joined to their data entries, the totals
// kept per filter while the view does not move, and `knownVersion` answered without running the query.
import { validationError } from "../lib/errors.ts";
import type { User } from "../domain/types.ts";
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
} from "./authorization.ts";
import type { ViewConsistency, ConsistencyParams } from "./consistency.ts";
import {
  dataEntryOf,
  decodeKeys,
  principalsOf,
  processDefinitionOf,
  processInstanceOf,
  processVariableOf,
  taskOf,
  type CollectionName,
  type DataEntryDocument,
  type ProcessDefinitionDocument,
  type ProcessInstanceDocument,
  type ProcessVariableDocument,
  type TaskDocument,
} from "./documents.ts";
import { and, FilterError, parseFilters, parseSort, type FilterTarget, type MongoFilter, type ParsedFilters, type SortSpec } from "./filters.ts";
import { collectionName, PRINCIPAL_CHANGES, type PrincipalChange } from "./generations.ts";
import type { Doc, FindOptions, ViewCollection, ViewStore } from "./stores/store.ts";

export interface PagingParams extends ConsistencyParams {
  page: number;
  size: number;
  sort?: string[];
  filters?: string[];
  /** The version of an answer the caller keeps: the same again answers { unchanged: true, version }. */
  knownVersion?: string;
}
export interface UserTasksParams extends PagingParams {
  user: User;
  assignedToMeOnly: boolean;
  involvementsOnly: boolean;
}
export interface GroupTasksParams extends PagingParams {
  user: User;
  includeAssigned: boolean;
}
export interface ByIdParams extends ConsistencyParams {
  id: string;
  user?: User;
}
export interface AttributeParams extends ConsistencyParams {
  user?: User;
  assignedToMeOnly: boolean;
}

export type Unchanged = { unchanged: true; version: string };

/** A filter or sort the caller got wrong: a validation error naming the list and the entry. */
function queryError(err: unknown): never {
  if (err instanceof FilterError) {
    throw validationError(err.message, [{ field: err.list, index: err.index, message: err.message }]);
  }
  throw err;
}

function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    queryError(err);
  }
}

/** Every path to a primitive value in a payload, nested keys joined by ".". */
export function payloadPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object") return prefix ? [prefix] : [];
  if (Array.isArray(value)) return value.flatMap((item) => payloadPaths(item, prefix));
  return Object.entries(value).flatMap(([key, item]) => payloadPaths(item, prefix ? `${prefix}.${key}` : key));
}

function rank(value: unknown): number {
  return value === null ? 0 : typeof value === "number" ? 1 : typeof value === "string" ? 2 : 3;
}

/** null first, then numbers, then strings, each in their order. */
export function compareValues(a: unknown, b: unknown): number {
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  return (a as number | string) < (b as number | string) ? -1 : (a as number | string) > (b as number | string) ? 1 : 0;
}

/** Remembers each total per collection and filter until the view's applied token changes. */
export class TotalsCache {
  private readonly totals = new Map<string, { token: string; total: number }>();
  private readonly capacity: number;

  constructor(capacity = 10_000) {
    this.capacity = capacity;
  }

  get(collection: string, filter: MongoFilter, token: string): number | undefined {
    const cached = this.totals.get(`${collection}\u0000${JSON.stringify(filter)}`);
    return cached && cached.token === token ? cached.total : undefined;
  }

  set(collection: string, filter: MongoFilter, token: string, total: number): void {
    if (this.totals.size >= this.capacity) this.totals.clear();
    this.totals.set(`${collection}\u0000${JSON.stringify(filter)}`, { token, total });
  }
}

const tasksOf = (docs: TaskDocument[]) => docs.map(taskOf);

/** A page's total as answered: exact up to the cap, else the cap, said to be one (a store may count past it). */
export function totalOf(total: number, cap: number | undefined): { totalElementCount: number; totalElementCountCapped?: true } {
  return cap !== undefined && total > cap ? { totalElementCount: cap, totalElementCountCapped: true } : { totalElementCount: total };
}

export class ViewQueries {
  private readonly store: ViewStore;
  private readonly consistency: ViewConsistency;
  private readonly totals = new TotalsCache();
  /** VIEW_COUNT_CAP: totals are exact up to this many; 0: always. */
  private readonly countCap: number;

  constructor(store: ViewStore, consistency: ViewConsistency, options: { countCap?: number } = {}) {
    this.store = store;
    this.consistency = consistency;
    this.countCap = options.countCap ?? 0;
  }

  // ---- tasks ----

  allTasks(params: PagingParams) {
    return this.pagedTasks(params, "task", [], tasksOf);
  }

  async tasksForUser(params: UserTasksParams) {
    await this.consistency.awaitPosition(params);
    return this.pagedTasks(params, "task", await this.userTaskConditions(params), tasksOf);
  }

  tasksForGroup(params: GroupTasksParams) {
    return this.pagedTasks(params, "task", [candidateGroupOf(params.user), assignedState(params.includeAssigned)], tasksOf);
  }

  tasksForCandidateUserAndGroup(params: GroupTasksParams) {
    const conditions = [candidateOf(params.user)];
    if (!params.includeAssigned) conditions.push(assignedState(false));
    return this.pagedTasks(params, "task", conditions, tasksOf);
  }

  tasksForApplication(params: PagingParams & { applicationName: string }) {
    return this.pagedTasks(params, "task", [{ applicationName: params.applicationName }], tasksOf);
  }

  async taskForId(params: ByIdParams) {
    await this.consistency.awaitPosition(params);
    const doc = await this.findTask(params.id, params.user);
    return doc ? taskOf(doc) : null;
  }

  allTasksWithDataEntries(params: PagingParams) {
    return this.pagedTasks(params, "taskWithDataEntries", [], (docs) => this.joinDataEntries(docs));
  }

  async tasksWithDataEntriesForUser(params: UserTasksParams) {
    await this.consistency.awaitPosition(params);
    return this.pagedTasks(params, "taskWithDataEntries", await this.userTaskConditions(params), (docs) => this.joinDataEntries(docs, params.user), params.user);
  }

  tasksWithDataEntriesForGroup(params: GroupTasksParams) {
    const conditions = [candidateGroupOf(params.user), assignedState(params.includeAssigned)];
    return this.pagedTasks(params, "taskWithDataEntries", conditions, (docs) => this.joinDataEntries(docs, params.user), params.user);
  }

  async taskWithDataEntriesForId(params: ByIdParams) {
    await this.consistency.awaitPosition(params);
    const doc = await this.findTask(params.id, params.user);
    if (!doc) return null;
    const [withEntries] = await this.joinDataEntries([doc], params.user);
    return withEntries;
  }

  async taskCountByApplication(params: ConsistencyParams) {
    await this.consistency.awaitPosition(params);
    const rows = await (await this.view("tasks")).countBy("applicationName", live);
    return rows
      .map((row) => ({ application: String(row.value), taskCount: row.count }))
      .sort((a, b) => (a.application < b.application ? -1 : a.application > b.application ? 1 : 0));
  }

  async taskAttributeNames(params: AttributeParams) {
    await this.consistency.awaitPosition(params);
    const tasks = await this.view<TaskDocument>("tasks");
    const docs = await tasks.find(and([live, ...this.visibleTaskConditions(params)]), { fields: ["payload"] });
    const names = new Set<string>();
    for (const doc of docs) for (const path of payloadPaths(decodeKeys(doc.payload))) names.add(path);
    const elements = [...names].sort();
    return { elements, totalElementCount: elements.length };
  }

  async taskAttributeValues(params: AttributeParams & { attributeName: string }) {
    await this.consistency.awaitPosition(params);
    let path: string;
    try {
      path = parseSort([`payload.${params.attributeName}`], "task", "")[0]![0];
    } catch (err) {
      throw validationError((err as Error).message, [{ field: "attributeName", message: (err as Error).message }]);
    }
    const values = await (await this.view("tasks")).distinct(path, and([live, ...this.visibleTaskConditions(params)]));
    const elements = values.filter((v) => v === null || typeof v !== "object").sort(compareValues);
    return { elements, totalElementCount: elements.length };
  }

  // ---- data entries ----

  async dataEntryForIdentity(params: ConsistencyParams & { entryType: string; entryId: string; user?: User }) {
    await this.consistency.awaitPosition(params);
    const conditions: MongoFilter[] = [live, { _id: `${params.entryType}#${params.entryId}` }];
    if (params.user) conditions.push(dataEntryVisibleTo(params.user));
    const [doc] = await (await this.view<DataEntryDocument>("dataEntries")).find(and(conditions), { limit: 1 });
    return doc ? dataEntryOf(doc) : null;
  }

  dataEntriesForType(params: PagingParams & { entryType: string }) {
    return this.pagedDataEntries(params, [{ entryType: params.entryType }]);
  }

  dataEntriesForUser(params: PagingParams & { user: User; involvementsOnly: boolean }) {
    const conditions = [dataEntryVisibleTo(params.user)];
    if (params.involvementsOnly) conditions.push(involving(params.user));
    return this.pagedDataEntries(params, conditions, params.user);
  }

  dataEntries(params: PagingParams) {
    return this.pagedDataEntries(params, []);
  }

  // ---- processes ----

  async processDefinitionsStartableByUser(params: ConsistencyParams & { user: User }) {
    await this.consistency.awaitPosition(params);
    const docs = await (await this.view<ProcessDefinitionDocument>("processDefinitions")).find(and([live, startableBy(params.user)]), {
      sort: [
        ["processDefinitionKey", 1],
        ["processDefinitionVersion", -1],
        ["_id", 1],
      ],
    });
    // The latest version of each key (across applications: a key belongs to one application).
    const latest = new Map<string, ProcessDefinitionDocument>();
    for (const doc of docs) if (!latest.has(`${doc.applicationName}\u0000${doc.processDefinitionKey}`)) latest.set(`${doc.applicationName}\u0000${doc.processDefinitionKey}`, doc);
    return [...latest.values()].map(processDefinitionOf);
  }

  async processDefinitionsForApplication(params: ConsistencyParams & { applicationName: string }) {
    await this.consistency.awaitPosition(params);
    const docs = await (await this.view<ProcessDefinitionDocument>("processDefinitions")).find(and([live, { applicationName: params.applicationName }]), {
      sort: [
        ["processDefinitionKey", 1],
        ["processDefinitionVersion", -1],
      ],
    });
    return docs.map(processDefinitionOf);
  }

  async processInstancesByState(params: ConsistencyParams & { states: string[]; page: number; size: number }) {
    await this.consistency.awaitPosition(params);
    const filter = and([live, { state: { $in: params.states } }]);
    const { docs, total } = await this.page<ProcessInstanceDocument>("processInstances", filter, { sort: [["_id", 1]], skip: params.page * params.size, limit: params.size });
    return { elements: docs.map(processInstanceOf), ...total };
  }

  async processVariablesForInstance(params: ConsistencyParams & { processInstanceId: string; variableNames?: string[] }) {
    await this.consistency.awaitPosition(params);
    const conditions: MongoFilter[] = [live, { processInstanceId: params.processInstanceId }];
    if (params.variableNames && params.variableNames.length > 0) conditions.push({ variableName: { $in: params.variableNames } });
    const docs = await (await this.view<ProcessVariableDocument>("processVariables")).find(and(conditions), {
      sort: [
        ["variableName", 1],
        ["_id", 1],
      ],
    });
    return { variables: docs.map(processVariableOf) };
  }

  // ---- helpers ----

  /** A collection of the live generation. */
  private async view<D extends object = Doc>(collection: CollectionName): Promise<ViewCollection<D & Doc>> {
    const meta = await this.consistency.readMeta();
    return this.store.collection<D & Doc>(collectionName(collection, meta.generation));
  }

  /**
   * One page and the total. Totals are kept per filter until the view moves on (its applied token changes):
   * counting every match is the expensive half of a page (every visible row, where the page needs 50), and a
   * task list asks the same question again and again between changes.
   */
  private async page<D extends object = Doc>(collection: CollectionName, filter: MongoFilter, options: FindOptions, version?: string) {
    const meta = await this.consistency.readMeta();
    // A user's version (read from the store, never older than the documents) where there is one: a total kept under
    // the view's token could lag the page by the moment a node that does not write takes to hear of a new token.
    const token = version ?? this.consistency.appliedToken(meta);
    const name = collectionName(collection, meta.generation);
    const knownTotal = this.totals.get(name, filter, token);
    const countCap = this.countCap > 0 ? this.countCap : undefined;
    const result = await this.store.collection<D & Doc>(name).page(filter, { ...options, knownTotal, countCap });
    if (knownTotal === undefined) this.totals.set(name, filter, token, result.total);
    return { docs: result.docs, total: totalOf(result.total, countCap) };
  }

  private visibleTaskConditions(params: { user?: User; assignedToMeOnly?: boolean }): MongoFilter[] {
    if (!params.user) return [];
    return [params.assignedToMeOnly ? assignedTo(params.user) : taskVisibleTo(params.user)];
  }

  /** TasksForUser: visible, or assigned only, or the user's involvements (never beyond what is visible). */
  private async userTaskConditions(params: { user: User; assignedToMeOnly: boolean; involvementsOnly: boolean }): Promise<MongoFilter[]> {
    const { user } = params;
    if (params.involvementsOnly) {
      const involvedIds = await (await this.view("dataEntries")).distinct("_id", and([live, involving(user), dataEntryVisibleTo(user)]));
      return [taskVisibleTo(user), { $or: [assignedTo(user), { correlationIds: { $in: involvedIds } }] }];
    }
    return [params.assignedToMeOnly ? assignedTo(user) : taskVisibleTo(user)];
  }

  private async findTask(id: string, user?: User): Promise<TaskDocument | null> {
    const conditions: MongoFilter[] = [live, { _id: id }];
    if (user) conditions.push(taskVisibleTo(user));
    const [doc] = await (await this.view<TaskDocument>("tasks")).find(and(conditions), { limit: 1 });
    return doc ?? null;
  }

  /**
   * The version to answer with (when the caller keeps one), or `unchanged` when the caller's is current. An answer
   * confined to what `user` may see has the user's version: the last position at which a task or data entry one of
   * their principals could see changed (`PRINCIPAL_CHANGES`), so it stays current while others' tasks change; any
   * other answer has the view's (its generation and applied token). Read before the query: an answer is never
   * older than its version.
   */
  private async version(params: PagingParams, user?: User): Promise<{ version?: string; unchanged?: Unchanged; userVersion?: string }> {
    if (user) {
      const version = await this.userVersion(user);
      if (params.knownVersion === undefined) return { userVersion: version };
      return version === params.knownVersion ? { version, unchanged: { unchanged: true, version } } : { version, userVersion: version };
    }
    if (params.knownVersion === undefined) return {};
    const version = await this.consistency.answerVersion();
    return version === params.knownVersion ? { version, unchanged: { unchanged: true, version } } : { version };
  }

  private async userVersion(user: User): Promise<string> {
    const { generation } = await this.consistency.readMeta();
    const marks = await this.store.collection<PrincipalChange>(collectionName(PRINCIPAL_CHANGES, generation)).byIds(principalsOf(user));
    return `${generation}:seen:${marks.reduce((last, mark) => Math.max(last, mark.position), 0)}`;
  }

  /**
   * A page of tasks, each element made by `elementsOf` (the task alone, or with its data entries); `user`: the
   * conditions confine it to what the user may see (their data entries, their version).
   */
  private async pagedTasks<E>(params: PagingParams, target: FilterTarget, conditions: MongoFilter[], elementsOf: (docs: TaskDocument[]) => E[] | Promise<E[]>, user?: User) {
    await this.consistency.awaitPosition(params);
    const { version, unchanged, userVersion } = await this.version(params, user);
    if (unchanged) return unchanged;
    const [filters, sort]: [ParsedFilters, SortSpec] = parsed(() => [parseFilters(params.filters, target), parseSort(params.sort, "task", "-createTime")]);
    const where: MongoFilter[] = [live, ...conditions, ...filters.where];
    if (filters.dataWhere.length > 0) {
      const visible = user ? [dataEntryVisibleTo(user)] : [];
      const ids = await (await this.view("dataEntries")).distinct("_id", and([live, ...visible, ...filters.dataWhere]));
      where.push({ correlationIds: { $in: ids } });
    }
    const { docs, total } = await this.page<TaskDocument>("tasks", and(where), { sort, skip: params.page * params.size, limit: params.size }, userVersion);
    const elements = await elementsOf(docs);
    return { elements, ...total, ...(version === undefined ? {} : { version }) };
  }

  /** Each task with the data entries it correlates to — only those the user may see, when a user asks. */
  private async joinDataEntries(docs: TaskDocument[], user?: User) {
    const ids = [...new Set(docs.flatMap((d) => d.correlationIds))];
    const conditions: MongoFilter[] = [live, { _id: { $in: ids } }];
    if (user) conditions.push(dataEntryVisibleTo(user));
    const entries = ids.length === 0 ? [] : await (await this.view<DataEntryDocument>("dataEntries")).find(and(conditions));
    const byId = new Map(entries.map((e) => [e._id, e]));
    return docs.map((doc) => ({
      task: taskOf(doc),
      dataEntries: doc.correlationIds.map((id) => byId.get(id)).filter((e): e is DataEntryDocument & Doc => !!e).map(dataEntryOf),
    }));
  }

  /** A page of data entries; `user`: the conditions confine it to what the user may see (their version). */
  private async pagedDataEntries(params: PagingParams, conditions: MongoFilter[], user?: User) {
    await this.consistency.awaitPosition(params);
    const { version, unchanged, userVersion } = await this.version(params, user);
    if (unchanged) return unchanged;
    const [filters, sort]: [ParsedFilters, SortSpec] = parsed(() => [parseFilters(params.filters, "dataEntry"), parseSort(params.sort, "dataEntry", "-lastModifiedDate")]);
    const filter = and([live, ...conditions, ...filters.where]);
    const { docs, total } = await this.page<DataEntryDocument>("dataEntries", filter, { sort, skip: params.page * params.size, limit: params.size }, userVersion);
    return { elements: docs.map(dataEntryOf), ...total, ...(version === undefined ? {} : { version }) };
  }
}
