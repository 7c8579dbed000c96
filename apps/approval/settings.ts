// The settings of the example application "Request Approval", from the node's configuration (lib/env.ts reads
// and checks the variables: APP_PORT, TASKLIST_URL in its `approval` section; HOST, ENGINE_URL / ENGINE_USERNAME /
// ENGINE_PASSWORD, DATABASE_URL and DATA_DIR shared with the platform).
import type { Environment } from "../../lib/env.ts";
import { embeddedDatabaseDirectory } from "../../stores/database.ts";
import type { EmbeddedEngineOptions } from "../../engine/embedded/engine.ts";
import { APPLICATION_NAME } from "./process.ts";

export interface ApprovalSettings {
  applicationName: string;
  /** HTTP port of the application's API and forms (APP_PORT); 0 picks a free one. */
  port: number;
  host: string;
  /** Operaton / Camunda 7 REST base (ENGINE_URL); null runs the embedded engine. */
  engineUrl: string | null;
  engineUsername: string | null;
  enginePassword: string | null;
  /** The requests' database: postgres://… ; null uses PGlite in `pgliteDir`. */
  databaseUrl: string | null;
  /** PGlite directory of the requests; "memory" keeps them in memory (tests). */
  pgliteDir: string;
  /** PostgreSQL schema of the application's tables (default "approval"). */
  schema?: string;
  /** Settings of the embedded engine (its own PGlite directory by default). */
  embeddedEngine: Omit<EmbeddedEngineOptions, "logger">;
  /** Where users find their task list (GET /api/environment). */
  tasklistUrl: string;
  /** The approve task is due this long after the request was (re)loaded, ms. */
  approvalDueInMs: number;
  /** Attempts of a failing service task before the engine raises an incident. */
  externalTaskRetries: number;
  /** Long polling of the external-task worker (Operaton), ms. */
  externalTaskLongPollMs: number;
}

/** The application's settings from the node's configuration (lib/env.ts `readEnvironment`). */
export function approvalSettingsOf(env: Environment): ApprovalSettings {
  return {
    applicationName: APPLICATION_NAME,
    port: env.approval.port,
    host: env.host,
    engineUrl: env.engine.url,
    engineUsername: env.engine.username,
    enginePassword: env.engine.password,
    databaseUrl: env.databaseUrl,
    pgliteDir: embeddedDatabaseDirectory(env.dataDir),
    embeddedEngine: {
      applicationName: APPLICATION_NAME,
      databaseUrl: env.databaseUrl,
      pgliteDir: embeddedDatabaseDirectory(env.dataDir),
    },
    tasklistUrl: env.approval.tasklistUrl,
    approvalDueInMs: 3 * 24 * 3600_000,
    externalTaskRetries: 5,
    externalTaskLongPollMs: 10_000,
  };
}
