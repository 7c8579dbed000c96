// Which view store a node runs (VIEW_STORE): `postgres` (the default, on VIEW_DATABASE_URL / DATABASE_URL or the
// embedded PGlite database), `mongo` (MONGO_URL) or `memory` (rebuilt from the event store at every start).
import type { Environment } from "../../lib/env.ts";
import { unavailable } from "../../lib/errors.ts";
import { untilReachable } from "../../lib/dependency-wait.ts";
import { embeddedDatabaseDirectory } from "../../stores/database.ts";
import type { ViewStore } from "./store.ts";
import { MemoryViewStore } from "./memory-store.ts";
import { MongoViewStore } from "./mongo-store.ts";
import { PostgresViewStore } from "./postgres-store.ts";

export type ViewStoreKind = "postgres" | "mongo" | "memory";

export interface ViewStoreSettings {
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
}

export type ResolvedViewStoreSettings = Required<Omit<ViewStoreSettings, "database">> & Pick<ViewStoreSettings, "database">;

/** The settings with the environment's defaults filled in; a MongoDB store without a URL is refused. */
export function resolveViewStoreSettings(s: ViewStoreSettings, env: Pick<Environment, "mongoUrl" | "viewStore" | "viewDatabaseUrl" | "databaseUrl" | "dataDir">): ResolvedViewStoreSettings {
  const mongoUrl = s.mongoUrl === undefined ? env.mongoUrl : s.mongoUrl;
  const store = s.store ?? env.viewStore ?? (mongoUrl ? "mongo" : "postgres");
  if (store === "mongo" && !mongoUrl) throw new Error("VIEW_STORE=mongo needs MONGO_URL");
  return {
    store,
    mongoUrl,
    databaseUrl: s.databaseUrl === undefined ? (env.viewDatabaseUrl ?? env.databaseUrl) : s.databaseUrl,
    pgliteDir: s.pgliteDir ?? embeddedDatabaseDirectory(env.dataDir),
    schema: s.schema ?? "view",
    ...(s.database === undefined ? {} : { database: s.database }),
  };
}

/** Opens the store; a MongoDB that is not up yet is waited for, like a server PostgreSQL (stores/database.ts). */
export async function openViewStore(s: ResolvedViewStoreSettings, log: (message: string) => void): Promise<ViewStore> {
  try {
    if (s.store === "mongo") return await untilReachable("MongoDB (view store)", () => MongoViewStore.connect(s.mongoUrl!, s.database), log);
    if (s.store === "memory") return new MemoryViewStore();
    return await PostgresViewStore.open({ url: s.databaseUrl ?? null, pgliteDir: s.databaseUrl || s.pgliteDir === "memory" ? null : s.pgliteDir, schema: s.schema });
  } catch (err) {
    const where = s.store === "mongo" ? s.mongoUrl : (s.databaseUrl ?? s.pgliteDir);
    throw unavailable(`The view store (${s.store}) at ${where} cannot be opened: ${(err as Error).message}`);
  }
}

/** Where the view lives, for the log. */
export function describeViewStore(s: ResolvedViewStoreSettings): string {
  if (s.store === "mongo") return "MongoDB";
  if (s.store === "memory") return "in memory (rebuilt from the event store at start)";
  return s.databaseUrl ? `PostgreSQL, schema ${s.schema}` : `the embedded database, schema ${s.schema}`;
}
