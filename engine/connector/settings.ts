// The engine connector's settings: what they are, their defaults, and how they come together from the
// environment (parsed and checked by lib/env.ts, `engine` section) and the overrides of whoever creates the
// connector (tests, a process application's own connector). No I/O: the environment arrives already read.
import { embeddedDatabaseDirectory } from "../../stores/database.ts";
import type { Environment } from "../../lib/env.ts";
import type { EnrichmentConfig } from "./enrichment.ts";

export interface EngineConnectorSettings {
  /** The process application this connector speaks for (`sourceReference.applicationName`). */
  applicationName: string;
  /** REST base of an Operaton / Camunda 7 engine, e.g. http://127.0.0.1:8180/engine-rest (unused with an injected adapter). */
  engineUrl: string | null;
  engineUsername: string | null;
  enginePassword: string | null;
  /** Pause between two polls, ms. */
  pollIntervalMs: number;
  /** How far each read reaches back before the watermark, ms: longer than the longest engine transaction plus clock skew. */
  overlapMs: number;
  /** Full reconciliation every … ms (0: only at start). */
  reconcileIntervalMs: number;
  requestTimeoutMs: number;
  /** Rows per engine request. */
  pageSize: number;
  /** Tasks handled at once (import, reconciliation). */
  concurrency: number;
  /** Polling lease per application, ms (one instance polls; another takes over after this when it dies). */
  leaseMs: number;
  /** Only these process definition keys (null: every process of the engine). */
  processDefinitionKeys: string[] | null;
  /**
   * Keys of processes whose start form is optional: users may also start them directly from the catalogue. Any
   * other process with a start form starts through it only (a direct start is refused with 409).
   */
  directStartKeys: string[];
  /** State database: postgres://… ; null uses PGlite in `pgliteDir`. */
  databaseUrl: string | null;
  /** PGlite directory; "memory" keeps the state in memory (tests). */
  pgliteDir: string;
  /** PostgreSQL schema of the state tables (default "connector"; one schema serves every application). */
  schema?: string;
  enrichment: EnrichmentConfig;
  collectProcessDefinitions: boolean;
  collectProcessInstances: boolean;
  collectProcessVariables: boolean;
  /**
   * A process started on a user's request carries the request id in this variable, so that a repeated request
   * (at-least-once delivery) finds the instance instead of starting a second one. Null: not set.
   */
  requestIdVariable: string | null;
  /** false: no timer; polls happen on `engineConnector.sync` only (tests). */
  autoPoll: boolean;
}

export const DEFAULT_SETTINGS: Omit<EngineConnectorSettings, "applicationName" | "engineUrl" | "pgliteDir" | "databaseUrl"> = {
  engineUsername: null,
  enginePassword: null,
  pollIntervalMs: 1000,
  overlapMs: 15_000,
  reconcileIntervalMs: 5 * 60_000,
  requestTimeoutMs: 10_000,
  pageSize: 200,
  concurrency: 4,
  leaseMs: 15_000,
  processDefinitionKeys: null,
  directStartKeys: [],
  enrichment: {},
  collectProcessDefinitions: true,
  collectProcessInstances: true,
  collectProcessVariables: true,
  requestIdVariable: "taskpoolRequestId",
  autoPoll: true,
};

/**
 * The settings the environment gives: APPLICATION_NAME, ENGINE_URL, ENGINE_USERNAME, ENGINE_PASSWORD,
 * ENGINE_POLL_INTERVAL, ENGINE_OVERLAP, ENGINE_RECONCILE_INTERVAL, ENGINE_PROCESS_KEYS, ENGINE_DIRECT_START_KEYS,
 * ENGINE_ENRICHMENT, and DATABASE_URL / DATA_DIR for the state, like the event store. Only what is set.
 */
export function connectorSettingsOf(environment: Environment): Partial<EngineConnectorSettings> {
  const engine = environment.engine;
  const settings: Partial<EngineConnectorSettings> = {
    databaseUrl: environment.databaseUrl,
    pgliteDir: embeddedDatabaseDirectory(environment.dataDir),
  };
  if (engine.applicationName) settings.applicationName = engine.applicationName;
  if (engine.url) settings.engineUrl = engine.url;
  if (engine.username) {
    settings.engineUsername = engine.username;
    settings.enginePassword = engine.password ?? "";
  }
  if (engine.pollIntervalMs !== null) settings.pollIntervalMs = engine.pollIntervalMs;
  if (engine.overlapMs !== null) settings.overlapMs = engine.overlapMs;
  if (engine.reconcileIntervalMs !== null) settings.reconcileIntervalMs = engine.reconcileIntervalMs;
  if (engine.processKeys) settings.processDefinitionKeys = engine.processKeys;
  if (engine.directStartKeys) settings.directStartKeys = engine.directStartKeys;
  // lib/env.ts checks that it is a JSON object (lib/ knows no engine types); its shape is EnrichmentConfig.
  if (engine.enrichment) settings.enrichment = engine.enrichment as EnrichmentConfig;
  return settings;
}

/**
 * The connector's settings: defaults, then the environment, then `overrides`. An application named in the
 * overrides without a state location of its own keeps its state under DATA_DIR, as the environment says.
 */
export function resolveSettings(environment: Environment, overrides: Partial<EngineConnectorSettings> = {}): EngineConnectorSettings {
  const fromEnv = connectorSettingsOf(environment);
  const merged: EngineConnectorSettings = { ...DEFAULT_SETTINGS, engineUrl: null, databaseUrl: null, pgliteDir: "memory", applicationName: "", ...fromEnv, ...overrides };
  if (overrides.applicationName && !overrides.pgliteDir && !overrides.databaseUrl && fromEnv.pgliteDir) {
    merged.pgliteDir = embeddedDatabaseDirectory(environment.dataDir);
  }
  return merged;
}
