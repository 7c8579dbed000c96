// The embedded view store: documents kept in memory, the very same MongoDB filter and sort documents evaluated
// with mingo, so that it answers every query as MongoDB does.
import type { Query as MingoQuery } from "mingo";
import { createRequire } from "node:module";
import { sortObject, type Doc, type Filter, type FindOptions, type ViewCollection, type ViewStore } from "./store.ts";

// mingo (about 300 modules) is loaded by the first in-memory collection that runs a query, not by every process
// that imports this file: the embedded platform's view lives in PostgreSQL and never needs it.
const require = createRequire(import.meta.url);
let mingoQuery: typeof MingoQuery | null = null;
function query(filter: Filter): MingoQuery {
  mingoQuery ??= (require("mingo") as typeof import("mingo")).Query;
  return new mingoQuery(filter);
}

function valuesAt(doc: unknown, path: string[]): unknown[] {
  if (path.length === 0) return Array.isArray(doc) ? doc : [doc];
  if (Array.isArray(doc)) return doc.flatMap((item) => valuesAt(item, path));
  if (doc === null || typeof doc !== "object") return [];
  const [head, ...rest] = path;
  const next = (doc as Record<string, unknown>)[head!];
  return next === undefined ? [] : valuesAt(next, rest);
}

/** The values a filter pins a field to (equality or $in, top level or in a top-level $and), or null. */
function pinnedValues(filter: Filter, field: string): string[] | null {
  const conditions = [filter, ...(((filter.$and as Filter[] | undefined) ?? []) as Filter[])];
  for (const condition of conditions) {
    const value = condition[field] as unknown;
    if (typeof value === "string") return [value];
    if (value && typeof value === "object" && Array.isArray((value as { $in?: unknown[] }).$in)) return (value as { $in: unknown[] }).$in.map(String);
  }
  return null;
}

/** The array every view document has for authorization; the embedded store keeps an index of it, like MongoDB. */
const INDEXED = "authorizedPrincipals";

class MemoryViewCollection<D extends Doc> implements ViewCollection<D> {
  readonly docs = new Map<string, D>();
  /** principal → ids of the documents that name it. */
  private readonly byPrincipal = new Map<string, Set<string>>();

  /**
   * The documents a filter can match: by id when it pins the id, by the principal index when it pins principals,
   * else all of them. The filter itself still decides; this only narrows what it is run over.
   */
  private candidates(filter: Filter): D[] {
    const ids = pinnedValues(filter, "_id");
    if (ids) return ids.map((id) => this.docs.get(id)).filter((d): d is D => d !== undefined);
    const principals = pinnedValues(filter, INDEXED);
    if (principals) {
      const found = new Set<string>();
      for (const principal of principals) for (const id of this.byPrincipal.get(principal) ?? []) found.add(id);
      return [...found].map((id) => this.docs.get(id)!);
    }
    return [...this.docs.values()];
  }

  private index(id: string, before: D | undefined, after: D): void {
    for (const principal of (before?.[INDEXED] as string[] | undefined) ?? []) this.byPrincipal.get(principal)?.delete(id);
    for (const principal of (after[INDEXED] as string[] | undefined) ?? []) {
      let ids = this.byPrincipal.get(principal);
      if (!ids) this.byPrincipal.set(principal, (ids = new Set()));
      ids.add(id);
    }
  }

  private matching(filter: Filter): D[] {
    const candidates = this.candidates(filter);
    if (Object.keys(filter).length === 0) return candidates;
    return query(filter).find<D>(candidates).all();
  }

  private present(found: D[], options: FindOptions): D[] {
    return found.map((doc) => {
      if (!options.fields) return structuredClone(doc);
      const picked: Record<string, unknown> = { _id: doc._id };
      for (const field of options.fields) if (field in doc) picked[field] = structuredClone(doc[field]);
      return picked as D;
    });
  }

  async page(filter: Filter, options: FindOptions): Promise<{ docs: D[]; total: number }> {
    // One pass of the filter for both the page and the total.
    const matching = this.matching(filter);
    let cursor = query({}).find<D>(matching);
    const sort = sortObject(options.sort);
    if (sort) cursor = cursor.sort(sort);
    if (options.skip) cursor = cursor.skip(options.skip);
    if (options.limit) cursor = cursor.limit(options.limit);
    return { docs: this.present(cursor.all(), options), total: matching.length };
  }

  async find(filter: Filter, options: FindOptions = {}): Promise<D[]> {
    let cursor = query(filter).find<D>(this.candidates(filter));
    const sort = sortObject(options.sort);
    if (sort) cursor = cursor.sort(sort);
    if (options.skip) cursor = cursor.skip(options.skip);
    if (options.limit) cursor = cursor.limit(options.limit);
    return this.present(cursor.all(), options);
  }

  async count(filter: Filter): Promise<number> {
    return this.matching(filter).length;
  }

  async byIds(ids: string[]): Promise<D[]> {
    return ids.map((id) => this.docs.get(id)).filter((d): d is D => d !== undefined).map((d) => structuredClone(d));
  }

  async write(docs: D[]): Promise<void> {
    for (const doc of docs) {
      const copy = structuredClone(doc);
      this.index(doc._id, this.docs.get(doc._id), copy);
      this.docs.set(doc._id, copy);
    }
  }

  async distinct(path: string, filter: Filter): Promise<unknown[]> {
    const seen = new Map<string, unknown>();
    for (const doc of this.matching(filter)) {
      for (const value of valuesAt(doc, path.split("."))) seen.set(JSON.stringify(value), value);
    }
    return [...seen.values()];
  }

  async countBy(path: string, filter: Filter): Promise<{ value: unknown; count: number }[]> {
    const counts = new Map<string, { value: unknown; count: number }>();
    for (const doc of this.matching(filter)) {
      const found = valuesAt(doc, path.split("."));
      const value = found.length === 0 ? null : found[0];
      const key = JSON.stringify(value);
      const entry = counts.get(key) ?? { value, count: 0 };
      entry.count += 1;
      counts.set(key, entry);
    }
    return [...counts.values()];
  }

  async ensureIndexes(): Promise<void> {}
}

/**
 * The embedded view store of `npm start`: documents in memory, rebuilt from the event store when the node
 * starts (the view's processor begins at the start of the log whenever this store is empty).
 */
export class MemoryViewStore implements ViewStore {
  readonly kind = "memory" as const;
  private readonly collections = new Map<string, MemoryViewCollection<Doc>>();
  private readonly meta = new Map<string, Doc>();

  collection<D extends Doc>(name: string): ViewCollection<D> {
    let collection = this.collections.get(name);
    if (!collection) this.collections.set(name, (collection = new MemoryViewCollection<Doc>()));
    return collection as unknown as ViewCollection<D>;
  }

  async getMeta(id: string): Promise<Doc | null> {
    const doc = this.meta.get(id);
    return doc ? structuredClone(doc) : null;
  }

  async setMeta(doc: Doc): Promise<void> {
    this.meta.set(doc._id, structuredClone(doc));
  }

  async collectionNames(): Promise<string[]> {
    return [...this.collections.keys()];
  }

  async drop(names: string[]): Promise<void> {
    for (const name of names) this.collections.delete(name);
  }

  async close(): Promise<void> {}
}
