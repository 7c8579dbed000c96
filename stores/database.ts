// Opens the PostgreSQL database of one owner (the event store, the view, an engine connector, the embedded engine,
// the example application). Every owner keeps its tables in a schema of its own, with its own knex migrations and
// migrations table, so owners can share one database — and on the embedded platform they do: one PGlite database
// (PostgreSQL compiled to WebAssembly) under DATA_DIR, opened once per process and shared by every owner.
//
// PGlite has a single connection. Owners sharing it each get their own knex (with their own search_path), and a
// process-wide lock hands the one connection to one knex at a time: a transaction of one owner can never have
// another owner's statements run inside it. On a server PostgreSQL each owner has its own pool as usual.
import knexFactory, { type Knex } from "knex";
import ClientPGLite from "knex-pglite";
import { PGlite } from "@electric-sql/pglite";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { untilReachable } from "../lib/dependency-wait.ts";

export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres://… ; null opens the embedded PGlite database. */
  url: string | null;
  /** The embedded database's directory (see embeddedDatabaseDirectory); null keeps a private PGlite in memory (tests). */
  pgliteDir: string | null;
  /** PostgreSQL schema that holds this owner's tables. */
  schema: string;
  migrations: Migration[];
  /** Table that records applied migrations, in the owner's schema. */
  migrationsTable: string;
  poolMax?: number;
  /** Where "waiting for the database" lines go (default: console.warn). */
  log?: (message: string) => void;
}

export interface Database {
  knex: Knex;
  embedded: boolean;
  schema: string;
  close(): Promise<void>;
}

/** Raised for a database layout this version cannot use; the message says what to do. */
export class DatabaseLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DatabaseLayoutError";
  }
}

/** Where the embedded platform keeps its one database. */
export function embeddedDatabaseDirectory(dataDir: string): string {
  return join(dataDir, "pglite");
}

/** A PostgreSQL identifier made of what an application name may contain. */
export function schemaName(prefix: string, name: string): string {
  return `${prefix}_${name.toLowerCase().replace(/[^a-z0-9_]+/g, "_")}`.slice(0, 63);
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens the owner's database. A server PostgreSQL that is not up yet (refused, starting up, in recovery, too many
 * connections) is waited for (lib/dependency-wait.ts): the node comes up when the database does.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (!options.url) return openOnce(options);
  return untilReachable(`the database (schema ${options.schema})`, () => openOnce(options), options.log ?? ((message: string) => console.warn(message)));
}

/**
 * A store that owns one database of its own (a pool or the embedded PGlite, its schema, its migrations): the engine
 * connector's state, the embedded engine's store, the example application's requests. It holds the database and
 * its knex, says whether it is embedded, and closes it.
 */
export abstract class DatabaseStore {
  protected readonly database: Database;
  protected readonly knex: Knex;

  protected constructor(database: Database) {
    this.database = database;
    this.knex = database.knex;
  }

  get embedded(): boolean {
    return this.database.embedded;
  }

  close(): Promise<void> {
    return this.database.close();
  }
}

async function openOnce(options: DatabaseOptions): Promise<Database> {
  const { schema } = options;
  if (!SCHEMA_NAME.test(schema)) throw new DatabaseLayoutError(`"${schema}" is not a schema name (lower case letters, digits, _)`);
  let knex: Knex;
  let release: () => Promise<void>;
  if (options.url) {
    knex = knexFactory({
      client: "pg",
      connection: options.url,
      searchPath: [schema],
      pool: {
        min: 0,
        // At least two: migrating holds one connection for its lock while the migrations use another.
        max: Math.max(2, options.poolMax ?? 10),
        // An open transaction holds back every reader of the event store (xmin barrier): keep them short.
        // No JIT: every statement here is short, and a cost estimate above jit_above_cost (a page of a million-task
        // view, the event store's reads of a large log) made PostgreSQL compile it first — 71 ms of a 400 ms page.
        afterCreate(conn: { query: (sql: string, cb: (err: Error | null) => void) => void }, done: (err: Error | null, conn: unknown) => void) {
          conn.query("SET idle_in_transaction_session_timeout = '60s'; SET jit = off", (err) => done(err, conn));
        },
      },
    });
    release = () => knex.destroy();
  } else {
    const shared = options.pgliteDir ? await sharedPGlite(resolve(options.pgliteDir)) : await privatePGlite();
    knex = knexFactory({
      client: SharedPGliteClient as unknown as typeof knexFactory.Client,
      dialect: "postgres",
      connection: () => ({ pglite: shared.pglite, shared }) as object,
      searchPath: [schema, "public"],
    });
    release = async () => {
      await knex.destroy();
      await shared.release();
    };
  }
  try {
    if (options.url) {
      // Nodes of a cluster start together: one at a time creates the schema and migrates it (two at once race on
      // CREATE SCHEMA and on knex's migration lock, and the loser would fail its start). The lock is held by a
      // transaction on one pooled connection while the migrations run on others.
      await knex.transaction(async (trx) => {
        await trx.raw(`SELECT pg_advisory_xact_lock(hashtext(?))`, [`taskpool:migrate:${schema}`]);
        await migrate(knex, options);
      });
    } else {
      await migrate(knex, options);
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { knex, embedded: !options.url, schema, close: release };
}

async function migrate(knex: Knex, options: DatabaseOptions): Promise<void> {
  const { schema } = options;
  if (await migrated(knex, options)) return;
  await knex.raw(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  {
    await knex.migrate.latest({
      schemaName: schema,
      tableName: options.migrationsTable,
      migrationSource: {
        getMigrations: async () => options.migrations,
        getMigrationName: (migration: Migration) => migration.name,
        // Each migration creates its objects in the owner's schema, whatever the session's search_path.
        getMigration: async (migration: Migration) => ({
          up: async (trx: Knex) => {
            await trx.raw(`SET LOCAL search_path TO "${schema}", public`);
            await migration.up(trx);
          },
          down: async (trx: Knex) => {
            await trx.raw(`SET LOCAL search_path TO "${schema}", public`);
            await migration.down(trx);
          },
        }),
      },
    });
  }
}

/**
 * Whether the owner's schema has exactly the migrations this version knows, all applied: then a start needs no
 * migration run. knex's own check asks information_schema several times per owner and takes its lock table — on
 * the embedded database that was a tenth of a second per owner on every restart; this is two plain statements.
 * Anything else (a fresh schema, a migration to apply, one this version does not know) goes through knex, which
 * applies or refuses as before.
 */
async function migrated(knex: Knex, options: DatabaseOptions): Promise<boolean> {
  const table = `"${options.schema}"."${options.migrationsTable}"`;
  const exists = await knex.raw(`SELECT to_regclass(?) IS NOT NULL AS present`, [table]);
  if (!(exists.rows as { present: boolean }[])[0]?.present) return false;
  const applied = new Set(((await knex.raw(`SELECT name FROM ${table}`)).rows as { name: string }[]).map((row) => row.name));
  return applied.size === options.migrations.length && options.migrations.every((migration) => applied.has(migration.name));
}

// ---- the shared embedded database ---------------------------------------------------------------------------------

/** One PGlite, the lock on its single connection, and how many owners have it open. */
interface SharedPGlite {
  pglite: PGlite;
  /** The search_path the connection has now (owners switch it when they take the connection). */
  searchPath: string | null;
  acquire(): Promise<void>;
  unlock(): void;
  release(): Promise<void>;
}

const open = new Map<string, Promise<SharedPGlite>>();

function sharedPGlite(dir: string): Promise<SharedPGlite> {
  let entry = open.get(dir);
  if (!entry) {
    entry = startPGlite(dir).catch((err) => {
      open.delete(dir);
      throw err;
    });
    open.set(dir, entry);
  }
  return entry.then((shared) => {
    (shared as SharedPGlite & { refs: number }).refs += 1;
    return shared;
  });
}

/**
 * Starts opening the embedded database before any owner asks for it, and holds it open until the returned release:
 * `npm start` calls this before it imports the services, so that PGlite's WebAssembly compiles and PostgreSQL starts
 * while the modules load — on a restart those two were most of the time, one after the other. The owners then get
 * this PGlite when they open theirs. A failure is left to them: the entry is dropped, so an owner's open tries again
 * and reports it.
 */
export function openEmbeddedEarly(dataDir: string): () => Promise<void> {
  const entry = sharedPGlite(resolve(embeddedDatabaseDirectory(dataDir)));
  entry.catch(() => undefined);
  return async () => {
    const shared = await entry.catch(() => null);
    await shared?.release();
  };
}

async function privatePGlite(): Promise<SharedPGlite> {
  const shared = lockable(new PGlite(), async () => undefined);
  await shared.pglite.waitReady;
  (shared as SharedPGlite & { refs: number }).refs = 1;
  return shared;
}

function lockable(pglite: PGlite, onLastRelease: () => Promise<void>): SharedPGlite & { refs: number } {
  let held = false;
  const waiting: (() => void)[] = [];
  const shared = {
    pglite,
    searchPath: null as string | null,
    refs: 0,
    acquire(): Promise<void> {
      if (!held) {
        held = true;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    unlock(): void {
      const next = waiting.shift();
      if (next) next();
      else held = false;
    },
    async release(): Promise<void> {
      shared.refs -= 1;
      if (shared.refs > 0) return;
      await onLastRelease();
      await pglite.close();
    },
  };
  return shared;
}

/** Subdirectories of DATA_DIR that the first layout (one PGlite per owner) created. */
function legacyDirectories(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && /^(eventstore|approval|engine-.+|engine-connector-.+)$/.test(entry.name))
    .filter((entry) => existsSync(join(dataDir, entry.name, "PG_VERSION")))
    .map((entry) => entry.name);
}

/** Refuses a DATA_DIR of the first layout (one PGlite per owner) with what to do, instead of ignoring it. */
export function checkEmbeddedLayout(dataDir: string): void {
  const legacy = legacyDirectories(dataDir);
  if (legacy.length > 0) {
    const dir = embeddedDatabaseDirectory(dataDir);
    throw new DatabaseLayoutError(
      `${dataDir} holds the data of an earlier Taskpool layout (one database per owner: ${legacy.join(", ")}). ` +
        `This version keeps everything in one database (${dir}) and does not convert the old one. ` +
        `Move the old folder aside to start afresh (for example: mv ${dataDir} ${dataDir}-old), or set DATA_DIR to another folder.`,
    );
  }
}

async function startPGlite(dir: string): Promise<SharedPGlite> {
  checkEmbeddedLayout(resolve(dir, ".."));
  const fresh = !existsSync(join(dir, "PG_VERSION"));
  if (fresh) {
    // A database prepared at install time (scripts/prepare-database.ts) is copied instead of running initdb
    // in WebAssembly, which takes seconds and leaves the process hundreds of megabytes larger.
    const template = preparedTemplate();
    rmSync(dir, { recursive: true, force: true });
    if (template) cpSync(template, dir, { recursive: true });
    else mkdirSync(dir, { recursive: true });
  }
  const pglite = new PGlite({ dataDir: dir, startParams: EMBEDDED_START_PARAMS });
  await pglite.waitReady;
  return lockable(pglite, async () => {
    open.delete(dir);
  });
}

/**
 * PostgreSQL's default 128 MB of shared buffers live in the WebAssembly heap, which never shrinks: the embedded
 * platform's data (tens of thousands of tasks) fits in 32 MB, and the operating system caches the files besides.
 * Measured: a PGlite that has written 200,000 rows holds 348 MB resident with 128 MB, 222 MB with 32 MB.
 */
const EMBEDDED_START_PARAMS = [...(PGlite as unknown as { defaultStartParams: string[] }).defaultStartParams, "-c", "shared_buffers=32MB"];

/** The prepared empty database, when `npm install` made one and it matches this PGlite. */
export function preparedTemplate(): string | null {
  const dir = templateDirectory();
  return existsSync(join(dir, "PG_VERSION")) && existsSync(join(dir, "TASKPOOL_TEMPLATE")) ? dir : null;
}

/** The prepared database's directory: per PGlite version, so an upgrade never opens an incompatible one. */
export function templateDirectory(): string {
  const pgliteRoot = resolve(dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite")), "..");
  const { version } = JSON.parse(readFileSync(join(pgliteRoot, "package.json"), "utf8")) as { version: string };
  return join(projectRoot, "node_modules", ".cache", "taskpool", `pglite-${version}`);
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * knex-pglite's client, with the shared PGlite: a knex takes the process-wide lock with the connection and gives
 * it back with it, switches the search_path to its owner's when another owner used the connection last, and never
 * closes the PGlite (the last owner to close does).
 */
class SharedPGliteClient extends (ClientPGLite as unknown as new (config: Knex.Config) => Knex.Client) {
  private get shared(): SharedPGlite {
    const connection = this.config.connection as () => { shared: SharedPGlite };
    return connection().shared;
  }

  override async acquireConnection(): Promise<unknown> {
    const shared = this.shared;
    await shared.acquire();
    try {
      const connection = (await super.acquireConnection()) as PGlite;
      const path = ((this as unknown as { searchPath: string[] }).searchPath).map((s) => `"${s}"`).join(", ");
      if (shared.searchPath !== path) {
        await connection.query(`SET search_path TO ${path}`);
        shared.searchPath = path;
      }
      return connection;
    } catch (err) {
      shared.unlock();
      throw err;
    }
  }

  override async releaseConnection(connection: unknown): Promise<void> {
    try {
      await super.releaseConnection(connection);
    } finally {
      this.shared.unlock();
    }
  }

  override async destroyRawConnection(): Promise<void> {
    // The PGlite outlives this knex: the shared entry closes it when its last owner is gone.
  }
}
