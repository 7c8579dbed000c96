// Prepares the embedded platform's empty database once, at `npm install`: a PGlite data directory with every
// owner's schema migrated, which the first `npm start` copies instead of running initdb in WebAssembly (seconds,
// and hundreds of megabytes the process would keep). Without it the platform still starts, only slower.
// Run again with --force after changing migrations (a stale copy is fine too: missing migrations run at start).
import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, schemaName, templateDirectory, type Database } from "../stores/database.ts";
import { eventStoreMigrations, eventStoreMigrationsTable } from "../migrations/event-store.ts";
import { viewMigrations, viewMigrationsTable } from "../migrations/view.ts";
import { engineConnectorMigrations, engineConnectorMigrationsTable } from "../migrations/engine-connector.ts";
import { embeddedEngineMigrations, embeddedEngineMigrationsTable } from "../migrations/embedded-engine.ts";
import { approvalMigrations, approvalMigrationsTable } from "../apps/approval/migrations/approval.ts";
import { APPLICATION_NAME } from "../apps/approval/process.ts";

const target = templateDirectory();
if (existsSync(join(target, "TASKPOOL_TEMPLATE")) && !process.argv.includes("--force")) {
  console.log(`Taskpool: prepared database present (${target})`);
  process.exit(0);
}

const started = Date.now();
const building = `${target}.building-${process.pid}`;
try {
  rmSync(building, { recursive: true, force: true });
  const owners: Database[] = [];
  // The embedded platform's owners with their default schemas (services/*.service.ts, apps/approval).
  owners.push(await openDatabase({ url: null, pgliteDir: building, schema: "eventstore", migrations: eventStoreMigrations, migrationsTable: eventStoreMigrationsTable }));
  owners.push(await openDatabase({ url: null, pgliteDir: building, schema: "view", migrations: viewMigrations, migrationsTable: viewMigrationsTable }));
  owners.push(await openDatabase({ url: null, pgliteDir: building, schema: "connector", migrations: engineConnectorMigrations, migrationsTable: engineConnectorMigrationsTable }));
  owners.push(await openDatabase({ url: null, pgliteDir: building, schema: schemaName("engine", APPLICATION_NAME), migrations: embeddedEngineMigrations, migrationsTable: embeddedEngineMigrationsTable }));
  owners.push(await openDatabase({ url: null, pgliteDir: building, schema: "approval", migrations: approvalMigrations, migrationsTable: approvalMigrationsTable }));
  for (const owner of owners) await owner.close();
  writeFileSync(join(building, "TASKPOOL_TEMPLATE"), `prepared ${new Date().toISOString()}\n`);
  rmSync(target, { recursive: true, force: true });
  renameSync(building, target);
  console.log(`Taskpool: prepared the embedded database in ${((Date.now() - started) / 1000).toFixed(1)} s (${target})`);
} catch (err) {
  rmSync(building, { recursive: true, force: true });
  // Never fail the installation: the platform creates its database at the first start instead.
  console.warn(`Taskpool: could not prepare the embedded database (${(err as Error).message}); the first start will create it`);
}
