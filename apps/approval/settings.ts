// The settings of the example application "Request Approval": its own variables APP_PORT and TASKLIST_URL, read and
// checked here with lib/env.ts's checks, and the node's configuration it shares with the platform (lib/env.ts:
// HOST, ENGINE_URL / ENGINE_USERNAME / ENGINE_PASSWORD, DATABASE_URL, DATA_DIR, and PORT for the task list's URL).
import { httpUrl, integer, type Environment } from "../../lib/env.ts";
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

/**
 * The application's settings from the node's configuration (lib/env.ts `readEnvironment`) and the variables
 * (`environmentVariables`); a wrong APP_PORT or TASKLIST_URL throws an error naming it.
 */
export function approvalSettingsOf(env: Environment, variables: NodeJS.ProcessEnv): ApprovalSettings {
  const tasklistUrl = httpUrl("TASKLIST_URL", variables.TASKLIST_URL, `http://localhost:${env.port}/`);
  return {
    applicationName: APPLICATION_NAME,
    port: integer("APP_PORT", variables.APP_PORT, 8080),
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
    tasklistUrl,
    approvalDueInMs: 3 * 24 * 3600_000,
    externalTaskRetries: 5,
    externalTaskLongPollMs: 10_000,
  };
}
