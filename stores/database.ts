// Opens the PostgreSQL database of one owner (the event store, the example application): a real server when a
// URL is given, otherwise an embedded PGlite under the data directory. Both get the same knex API and the same
// migrations, so every query in the product runs unchanged on both.
import knexFactory, { type Knex } from "knex";
import ClientPGLite from "knex-pglite";
import { PGlite } from "@electric-sql/pglite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres://… ; null opens PGlite. */
  url: string | null;
  /** Directory for PGlite files; null keeps PGlite in memory (tests). */
  pgliteDir: string | null;
  /** PostgreSQL schema that holds this owner's tables (default: public). */
  schema?: string;
  migrations: Migration[];
  /** Table that records applied migrations; one per owner, so owners can share a database. */
  migrationsTable: string;
  poolMax?: number;
}

export interface Database {
  knex: Knex;
  embedded: boolean;
  schema: string;
  close(): Promise<void>;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const schema = options.schema ?? "public";
  let knex: Knex;
  if (options.url) {
    knex = knexFactory({
      client: "pg",
      connection: options.url,
      searchPath: [schema],
      pool: {
        min: 0,
        max: options.poolMax ?? 10,
        // An open transaction holds back every reader of the event store (xmin barrier): keep them short.
        afterCreate(conn: { query: (sql: string, cb: (err: Error | null) => void) => void }, done: (err: Error | null, conn: unknown) => void) {
          conn.query("SET idle_in_transaction_session_timeout = '60s'", (err) => done(err, conn));
        },
      },
    });
  } else {
    let pglite: PGlite;
    if (options.pgliteDir) {
      mkdirSync(options.pgliteDir, { recursive: true });
      pglite = new PGlite({ dataDir: options.pgliteDir });
    } else {
      pglite = new PGlite();
    }
    await pglite.waitReady;
    knex = knexFactory({
      client: ClientPGLite as unknown as typeof knexFactory.Client,
      dialect: "postgres",
      connection: () => ({ pglite }) as object,
      searchPath: [schema],
    });
  }
  if (schema !== "public") await knex.raw(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await knex.migrate.latest({
    schemaName: schema,
    tableName: options.migrationsTable,
    migrationSource: {
      getMigrations: async () => options.migrations,
      getMigrationName: (migration: Migration) => migration.name,
      getMigration: async (migration: Migration) => migration,
    },
  });
  return {
    knex,
    embedded: !options.url,
    schema,
    close: () => knex.destroy(),
  };
}

/** Where an embedded owner keeps its PGlite files. */
export function pgliteDirectory(dataDir: string, owner: string): string {
  return join(dataDir, owner);
}
