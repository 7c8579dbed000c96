// The projection: applies batches of events to the documents of one generation (view/documents.ts decides what
// each event does to a document; this loads the documents a batch touches, writes those it changed and says
// what changed and who could see it before and after), and keeps the view's token next to the documents.
import type { RecordedEvent } from "../stores/event-store.ts";
import {
  projectDataEntry,
  projectProcessDefinition,
  projectProcessInstance,
  projectProcessVariables,
  projectTask,
  targetOf,
  type CollectionName,
  type DataEntryDocument,
  type ProcessDefinitionDocument,
  type ProcessInstanceDocument,
  type ProcessVariableDocument,
  type TaskDocument,
  type ViewEvent,
} from "./documents.ts";
import { collectionName, ensureIndexes, generationCollections, initialMeta, loadMeta, positionOf, PRINCIPAL_CHANGES, type PrincipalChange, type ViewMeta } from "./generations.ts";
import type { Doc, ViewStore } from "./stores/store.ts";

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

/** The projected fields every document has. */
type Projected = Doc & { deleted: boolean; authorizedPrincipals: string[]; applicationName?: string };

export function toViewEvent(e: RecordedEvent): ViewEvent {
  return { type: e.type, data: e.data, streamId: e.streamId, streamVersion: e.streamVersion, globalPosition: e.globalPosition, recordedAt: e.recordedAt };
}

/** The document of `collection` after `event` (the same document when the event changes nothing). */
export function project(collection: CollectionName, doc: Doc | null, event: ViewEvent): Doc | null {
  switch (collection) {
    case "tasks":
      return projectTask(doc as TaskDocument | null, event) as Doc | null;
    case "dataEntries":
      return projectDataEntry(doc as DataEntryDocument | null, event) as Doc | null;
    case "processDefinitions":
      return projectProcessDefinition(doc as ProcessDefinitionDocument | null, event) as Doc | null;
    case "processInstances":
      return projectProcessInstance(doc as ProcessInstanceDocument | null, event) as Doc | null;
    default:
      return doc;
  }
}

/** Applies a batch to one generation; returns what changed. */
export async function applyEvents(store: ViewStore, events: RecordedEvent[], generation: number): Promise<ViewChange[]> {
  const grouped = new Map<CollectionName, { event: ViewEvent; id: string }[]>();
  for (const event of events.map(toViewEvent)) {
    const target = targetOf(event);
    if (!target) continue;
    const items = grouped.get(target.collection);
    if (items) items.push({ event, id: target.id });
    else grouped.set(target.collection, [{ event, id: target.id }]);
  }
  const changes: ViewChange[] = [];
  for (const [collection, items] of grouped) {
    const documents = store.collection(collectionName(collection, generation));
    if (collection === "processVariables") {
      const instanceIds = [...new Set(items.map((i) => i.id))];
      const current = (await documents.find({ processInstanceId: { $in: instanceIds } })) as unknown as ProcessVariableDocument[];
      const docs = new Map(current.map((d) => [d._id, d]));
      const written = new Map<string, ProcessVariableDocument>();
      for (const { event } of items) for (const doc of projectProcessVariables(docs, event)) written.set(doc._id, doc);
      await documents.write([...written.values()] as unknown as Doc[]);
      for (const doc of written.values()) {
        changes.push({ collection, id: doc._id, change: doc.deleted ? "deleted" : "updated", before: [], after: [] });
      }
      continue;
    }
    const ids = [...new Set(items.map((i) => i.id))];
    const current = new Map<string, Doc>((await documents.byIds(ids)).map((d) => [d._id, d]));
    const before = new Map<string, Projected | undefined>(ids.map((id) => [id, current.get(id) as Projected | undefined]));
    const touched = new Set<string>();
    const refusals = new Map<string, ViewChange["refusal"]>();
    for (const { event, id } of items) {
      const doc = current.get(id) ?? null;
      const next = project(collection, doc, event);
      if (next && next !== doc) {
        current.set(id, next);
        touched.add(id);
        if (event.type === "TaskInteractionRefused") {
          const data = event.data as { interaction: string; reason: string; username?: string | null };
          refusals.set(id, { interaction: data.interaction, reason: data.reason, username: data.username ?? null });
        }
      }
    }
    const docs = [...touched].map((id) => current.get(id) as Projected);
    await documents.write(docs);
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
  await markPrincipals(store, changes, generation, events[events.length - 1]!.globalPosition);
  return changes;
}

/** The principals that could see a changed task or data entry, before or after, changed at `position`. */
async function markPrincipals(store: ViewStore, changes: ViewChange[], generation: number, position: number): Promise<void> {
  const principals = new Set<string>();
  for (const change of changes) {
    if (change.collection !== "tasks" && change.collection !== "dataEntries") continue;
    for (const principal of change.before) principals.add(principal);
    for (const principal of change.after) principals.add(principal);
  }
  if (principals.size === 0) return;
  const marks: PrincipalChange[] = [...principals].map((principal) => ({ _id: principal, position }));
  await store.collection(collectionName(PRINCIPAL_CHANGES, generation)).write(marks);
}

/** Runs `work` in one transaction where the store has them: one commit instead of one per statement. */
export function atomically<T>(store: ViewStore, work: () => Promise<T>): Promise<T> {
  return store.atomically ? store.atomically(work) : work();
}

/**
 * The live projection of the tracking processor: the meta it has written, the batches it applies (each with its
 * token, in one transaction where the store has them) and the changes not yet told.
 */
export class ViewProjection {
  /** The meta as this instance wrote it last (current while it holds the processor's lease). */
  meta: ViewMeta = initialMeta();
  private pending: ViewChange[] = [];
  private readonly store: ViewStore;

  constructor(store: ViewStore) {
    this.store = store;
  }

  /** Reads the stored meta and prepares its generation; returns the token to continue after. */
  async load(): Promise<string> {
    this.meta = await loadMeta(this.store);
    await ensureIndexes(this.store, this.meta.generation);
    return this.meta.token;
  }

  /** Applies a batch and records its token with it. */
  async apply(events: RecordedEvent[]): Promise<void> {
    const last = events[events.length - 1]!;
    const meta: ViewMeta = { ...this.meta, _id: "view", token: last.token, globalPosition: last.globalPosition };
    const changes = await atomically(this.store, async () => {
      const applied = await applyEvents(this.store, events, meta.generation);
      await this.store.setMeta(meta);
      return applied;
    });
    this.meta = meta;
    this.pending.push(...changes);
  }

  /** The processor stores `token`: kept when no batch wrote it; returns the changes to tell since the last call. */
  async storeToken(token: string): Promise<ViewChange[]> {
    if (this.meta.token !== token) {
      // Not written with a batch (a reset, a replay's switch, a token moved over events the view skips).
      await this.setMeta({ ...this.meta, token, globalPosition: positionOf(token) });
    }
    return this.pending.splice(0);
  }

  async setMeta(meta: ViewMeta): Promise<void> {
    this.meta = { ...meta, _id: "view" };
    await this.store.setMeta(this.meta);
  }

  /** A reset rebuilds the current generation in place (a replay builds a new one instead). */
  async reset(): Promise<void> {
    await this.store.drop(generationCollections(this.meta.generation));
    await ensureIndexes(this.store, this.meta.generation);
  }
}
