// The view's collections come in generations ("tasks_g1", "tasks_g2", …): a replay builds the next one while the
// current one answers, then switches. The view's meta ("view") names the live generation and the token of the
// last event applied to it.
import { START_TOKEN } from "../lib/tokens.ts";
import { collections, type CollectionName } from "./documents.ts";
import type { IndexSpec, ViewStore } from "./stores/store.ts";

/** The view's meta: the live generation and the token (and global position) it has applied. */
export type ViewMeta = {
  _id: "view";
  generation: number;
  token: string;
  globalPosition: number;
};

export function initialMeta(): ViewMeta {
  return { _id: "view", generation: 1, token: START_TOKEN, globalPosition: 0 };
}

/** The stored meta, or the initial one when the view has none yet. */
export async function loadMeta(store: Pick<ViewStore, "getMeta">): Promise<ViewMeta> {
  const stored = await store.getMeta("view");
  return stored ? { ...(stored as unknown as ViewMeta), _id: "view" } : initialMeta();
}

/** The global position a token ends at ("<segment>:<position>"). */
export function positionOf(token: string): number {
  return Number(token.split(":")[1]);
}

/**
 * Per generation, for each principal, the global position of the last batch that changed a task or data entry
 * the principal could see before or after it (`{_id: principal, position}`). A user's task list and data entries
 * can only change when one of their principals' positions moves: the version of their answers (`knownVersion`)
 * is that position, so a kept answer stays valid while the view applies what others see. Written with the
 * documents, in the same transaction where the store has them.
 */
export const PRINCIPAL_CHANGES = "principalChanges" as const;
export type PrincipalChange = { _id: string; position: number };

export function collectionName(collection: CollectionName | typeof PRINCIPAL_CHANGES, generation: number): string {
  return `${collection}_g${generation}`;
}

/** Every collection of a generation. */
export function generationCollections(generation: number): string[] {
  return [...collections, PRINCIPAL_CHANGES].map((c) => collectionName(c, generation));
}

export const INDEXES: Record<CollectionName, IndexSpec[]> = {
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

export async function ensureIndexes(store: ViewStore, generation: number): Promise<void> {
  for (const collection of collections) await store.collection(collectionName(collection, generation)).ensureIndexes(INDEXES[collection]);
  await store.collection(collectionName(PRINCIPAL_CHANGES, generation)).ensureIndexes([]);
}
