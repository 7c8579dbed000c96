// The view on MongoDB (VIEW_STORE=mongo; Polyflow's mongo-view), through the official driver.
import type { Collection, Db, MongoClient } from "mongodb";
import { sortObject, type Doc, type Filter, type FindOptions, type IndexSpec, type ViewCollection, type ViewStore } from "./store.ts";

const META = "view_meta";

/** Documents per bulk write (see MongoViewCollection.write). */
const WRITE_CHUNK = 20;

class MongoViewCollection<D extends Doc> implements ViewCollection<D> {
  private readonly collection: Collection<D>;

  constructor(collection: Collection<D>) {
    this.collection = collection;
  }

  async find(filter: Filter, options: FindOptions = {}): Promise<D[]> {
    let cursor = this.collection.find(filter as never);
    const sort = sortObject(options.sort);
    if (sort) cursor = cursor.sort(sort);
    if (options.skip) cursor = cursor.skip(options.skip);
    if (options.limit) cursor = cursor.limit(options.limit);
    if (options.fields) cursor = cursor.project(Object.fromEntries(options.fields.map((f) => [f, 1]))) as typeof cursor;
    return (await cursor.toArray()) as D[];
  }

  count(filter: Filter): Promise<number> {
    return this.collection.countDocuments(filter as never);
  }

  async byIds(ids: string[]): Promise<D[]> {
    if (ids.length === 0) return [];
    return (await this.collection.find({ _id: { $in: ids } } as never).toArray()) as D[];
  }

  async write(docs: D[]): Promise<void> {
    // In chunks: FerretDB 1.x holds one PostgreSQL connection per statement of a bulk that matches a document
    // until the whole bulk ends, so a bulk larger than its pool (50) hangs the server. MongoDB is served well too.
    for (let i = 0; i < docs.length; i += WRITE_CHUNK) {
      await this.collection.bulkWrite(
        docs.slice(i, i + WRITE_CHUNK).map((doc) => ({ replaceOne: { filter: { _id: doc._id } as never, replacement: doc, upsert: true } })),
        { ordered: false },
      );
    }
  }

  async page(filter: Filter, options: FindOptions): Promise<{ docs: D[]; total: number }> {
    const total = options.knownTotal ?? (options.countCap ? this.collection.countDocuments(filter as never, { limit: options.countCap + 1 }) : this.count(filter));
    const [docs, counted] = await Promise.all([this.find(filter, options), total]);
    return { docs, total: counted };
  }

  distinct(path: string, filter: Filter): Promise<unknown[]> {
    return this.collection.distinct(path as never, filter as never);
  }

  async countBy(path: string, filter: Filter): Promise<{ value: unknown; count: number }[]> {
    const rows = await this.collection.aggregate([{ $match: filter }, { $group: { _id: `$${path}`, count: { $sum: 1 } } }]).toArray();
    return rows.map((row) => ({ value: row._id, count: row.count }));
  }

  async ensureIndexes(indexes: IndexSpec[]): Promise<void> {
    for (const index of indexes) await this.collection.createIndex(index.keys);
  }
}

export class MongoViewStore implements ViewStore {
  readonly kind = "mongo" as const;
  private readonly client: MongoClient;
  private readonly db: Db;

  private constructor(client: MongoClient, db: Db) {
    this.client = client;
    this.db = db;
  }

  /** Connects to `url`; the database is the URL's path, or `database` when given. */
  static async connect(url: string, database?: string): Promise<MongoViewStore> {
    // A hung server must surface as an error (and a retried batch), not as a view that silently stops.
    // Loaded only where a MongoDB view is used: the driver is a sizeable part of a node's memory otherwise.
    const { MongoClient } = await import("mongodb");
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000, socketTimeoutMS: 120_000, retryWrites: false });
    try {
      await client.connect();
      const db = client.db(database ?? (new URL(url).pathname.replace(/^\//, "") || "taskpool"));
      await db.command({ ping: 1 });
      return new MongoViewStore(client, db);
    } catch (err) {
      // Not reached (the caller may try again): a client left open would keep monitoring the server.
      await client.close().catch(() => undefined);
      throw err;
    }
  }

  collection<D extends Doc>(name: string): ViewCollection<D> {
    return new MongoViewCollection<D>(this.db.collection<D>(name));
  }

  async getMeta(id: string): Promise<Doc | null> {
    return (await this.db.collection<Doc>(META).findOne({ _id: id })) as Doc | null;
  }

  async setMeta(doc: Doc): Promise<void> {
    await this.db.collection<Doc>(META).replaceOne({ _id: doc._id }, doc, { upsert: true });
  }

  async collectionNames(): Promise<string[]> {
    return (await this.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
  }

  async drop(names: string[]): Promise<void> {
    const existing = new Set(await this.collectionNames());
    for (const name of names) if (existing.has(name)) await this.db.collection(name).drop();
  }

  /** Drops the whole database (tests). */
  async dropDatabase(): Promise<void> {
    await this.db.dropDatabase();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
