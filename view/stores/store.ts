// The view's storage interface: every store (PostgreSQL, MongoDB, memory) takes the same MongoDB filter and sort
// documents (view/filters.ts), so that each answers every query of the view alike; only scale differs.
// view/stores/postgres-store.ts, mongo-store.ts and memory-store.ts implement it; open.ts picks one.
import type { SortSpec } from "../filters.ts";

export type Doc = { _id: string } & Record<string, unknown>;
export type Filter = Record<string, unknown>;

export interface FindOptions {
  sort?: SortSpec;
  skip?: number;
  limit?: number;
  /** Top-level fields to return (all when absent). */
  fields?: string[];
  /** page(): the total is known already (counted for the same filter and view state); do not count again. */
  knownTotal?: number;
  /**
   * page(): count exactly up to this many; when more match, the total may be any number above it (a store stops
   * counting where it can). Absent: always exact.
   */
  countCap?: number;
}

export interface IndexSpec {
  keys: Record<string, 1 | -1>;
}

export interface ViewCollection<D extends Doc = Doc> {
  find(filter: Filter, options?: FindOptions): Promise<D[]>;
  count(filter: Filter): Promise<number>;
  /** One page of the matching documents and how many match in all (both from the store). */
  page(filter: Filter, options: FindOptions): Promise<{ docs: D[]; total: number }>;
  byIds(ids: string[]): Promise<D[]>;
  /** Replaces (or inserts) each document by `_id`. */
  write(docs: D[]): Promise<void>;
  distinct(path: string, filter: Filter): Promise<unknown[]>;
  countBy(path: string, filter: Filter): Promise<{ value: unknown; count: number }[]>;
  ensureIndexes(indexes: IndexSpec[]): Promise<void>;
}

export interface ViewStore {
  readonly kind: "mongo" | "memory" | "postgres";
  collection<D extends Doc = Doc>(name: string): ViewCollection<D>;
  getMeta(id: string): Promise<Doc | null>;
  setMeta(doc: Doc): Promise<void>;
  collectionNames(): Promise<string[]>;
  drop(names: string[]): Promise<void>;
  /** Runs `work` so that its writes (a projection batch and the view's token) land together, where the store can. */
  atomically?<T>(work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A sort as MongoDB and mingo take it. */
export function sortObject(sort: SortSpec | undefined): Record<string, 1 | -1> | undefined {
  if (!sort || sort.length === 0) return undefined;
  return Object.fromEntries(sort);
}
