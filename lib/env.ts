// Reads the product's environment variables in one place. The names are the public contract (README, table
// "Configuration"); every other module asks this one instead of reading process.env itself.
import { hostname } from "node:os";
import { resolve } from "node:path";

export interface Environment {
  nodeId: string;
  namespace: string;
  transporter: string | null;
  services: string[] | null;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
  requestTimeoutMs: number;
  /** HEARTBEAT_INTERVAL_MS / HEARTBEAT_TIMEOUT_MS: how fast a dead node is noticed (lib/discoverer.ts). */
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  databaseUrl: string | null;
  mongoUrl: string | null;
  /** VIEW_STORE; null: mongo with MONGO_URL, else postgres. */
  viewStore: "postgres" | "mongo" | "memory" | null;
  viewDatabaseUrl: string | null;
  /** VIEW_COUNT_CAP: a list's total is exact up to this many, beyond it reported as this many and capped; 0: always exact. */
  viewCountCap: number;
  dataDir: string;
  port: number;
  metricsPort: number;
  /** METRICS_HOST: the address METRICS_PORT listens on (default loopback). */
  metricsHost: string;
  tracingExporter: string | null;
  /** HOST: the address the REST API listens on. */
  host: string;
  /** USERS_FILE: the user directory (null: config/users.json). */
  usersFile: string | null;
  /**
   * FORM_URLS (JSON) and PUBLIC_URL: the form and start links of the task list (gateway/tasklist-dto.ts); FORM_URLS
   * replaces the templates the process applications announce.
   */
  formUrls: string | null;
  publicUrl: string;
  /** DATA_ENTRY_DELETION_STRATEGY: whether a deleted data entry may still change ("lax") or not ("strict"). */
  dataEntryDeletionStrategy: "lax" | "strict";
  /** EVENT_MAX_BYTES: the largest event the event store accepts (it travels in one transporter message). */
  eventMaxBytes: number;
  api: {
    /** API_WAIT_TIMEOUT: how long `?wait=true` waits for the view. */
    waitTimeoutMs: number;
    /** READY_MAX_LAG: events the view may be behind while /api/ready says READY. */
    readyMaxLag: number;
    /** SSE_RETENTION_MS / SSE_RETENTION_EVENTS: what an event stream can resume from (Last-Event-ID). */
    sseRetentionMs: number;
    sseRetentionEvents: number;
    /** DASHBOARD_INTERVAL_MS: how often the dashboard's snapshot is sent. */
    dashboardIntervalMs: number;
    /** API_ANSWER_CACHE_MB: memory for the list answers kept per caller and view version (gateway/answer-cache.ts); 0: off. */
    answerCacheBytes: number;
  };
  /**
   * The engine connector of a process application (engine/connector/settings.ts). Null: not set, the
   * connector's default (or its application's) applies.
   */
  engine: {
    /** APPLICATION_NAME: the process application the generic `engineConnector` speaks for. */
    applicationName: string | null;
    /** ENGINE_URL: REST base of an Operaton / Camunda 7 engine; null: the engine registered in this process. */
    url: string | null;
    /** ENGINE_USERNAME / ENGINE_PASSWORD: basic auth; the password counts only with a username (empty when unset). */
    username: string | null;
    password: string | null;
    /** ENGINE_POLL_INTERVAL (ms, at least 10), ENGINE_OVERLAP (ms), ENGINE_RECONCILE_INTERVAL (ms). */
    pollIntervalMs: number | null;
    overlapMs: number | null;
    reconcileIntervalMs: number | null;
    /** ENGINE_PROCESS_KEYS, ENGINE_DIRECT_START_KEYS: comma-separated process definition keys. */
    processKeys: string[] | null;
    directStartKeys: string[] | null;
    /** ENGINE_ENRICHMENT: a JSON object, the connector's EnrichmentConfig (variable filters, correlations, assignment). */
    enrichment: Record<string, unknown> | null;
  };
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

/**
 * A non-negative integer, or the fallback when the variable is not set. Exported with `httpUrl` for the variables a
 * process application reads itself (from `environmentVariables`), so that it checks them as the platform does.
 */
export function integer(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`Environment variable ${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

function optional(raw: string | undefined): string | null {
  return raw === undefined || raw.trim() === "" ? null : raw.trim();
}

/** A non-negative integer, or null when the variable is not set. */
function optionalInteger(name: string, raw: string | undefined): number | null {
  return raw === undefined || raw.trim() === "" ? null : integer(name, raw, 0);
}

/** A comma-separated list (empty entries dropped), or null when the variable is not set. */
function list(raw: string | undefined): string[] | null {
  const value = optional(raw);
  return value === null ? null : value.split(",").map((entry) => entry.trim()).filter(Boolean);
}

/** A JSON object, or null when the variable is not set. Its fields are the connector's to interpret. */
function jsonObject<T extends object>(name: string, raw: string | undefined): T | null {
  const value = optional(raw);
  if (value === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new Error(`Environment variable ${name} must be JSON: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`Environment variable ${name} must be a JSON object, got ${value.slice(0, 100)}`);
  return parsed as T;
}

function engineConnector(env: NodeJS.ProcessEnv): Environment["engine"] {
  const username = optional(env.ENGINE_USERNAME);
  const poll = optionalInteger("ENGINE_POLL_INTERVAL", env.ENGINE_POLL_INTERVAL);
  return {
    applicationName: optional(env.APPLICATION_NAME),
    url: optional(env.ENGINE_URL),
    username,
    password: username ? (env.ENGINE_PASSWORD ?? "") : null,
    pollIntervalMs: poll === null ? null : Math.max(poll, 10),
    overlapMs: optionalInteger("ENGINE_OVERLAP", env.ENGINE_OVERLAP),
    reconcileIntervalMs: optionalInteger("ENGINE_RECONCILE_INTERVAL", env.ENGINE_RECONCILE_INTERVAL),
    processKeys: list(env.ENGINE_PROCESS_KEYS),
    directStartKeys: list(env.ENGINE_DIRECT_START_KEYS),
    enrichment: jsonObject<Record<string, unknown>>("ENGINE_ENRICHMENT", env.ENGINE_ENRICHMENT),
  };
}

const VIEW_STORES = ["postgres", "mongo", "memory"] as const;

function viewStore(raw: string | undefined): Environment["viewStore"] {
  const value = optional(raw)?.toLowerCase() ?? null;
  if (value !== null && !(VIEW_STORES as readonly string[]).includes(value)) {
    throw new Error(`Environment variable VIEW_STORE must be one of ${VIEW_STORES.join(", ")}, got "${raw}"`);
  }
  return value as Environment["viewStore"];
}

function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  const value = optional(raw)?.toLowerCase() ?? fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`Environment variable ${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  return value as T;
}

/** An http(s) URL, or the fallback when the variable is not set. */
export function httpUrl(name: string, raw: string | undefined, fallback: string): string {
  const value = optional(raw);
  if (value === null) return fallback;
  const url = URL.canParse(value) ? new URL(value) : null;
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) throw new Error(`Environment variable ${name} must be an http(s) URL, got "${raw}"`);
  return value;
}

/**
 * The variables a module reads beyond this one's checks (the gateways' authentication, gateway/gateway-security.ts;
 * a process application's own): `env` when given, else the process's environment.
 */
export function environmentVariables(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return env ?? process.env;
}

/**
 * The node's configuration from `env` (default: the process's), every variable checked: a wrong value throws an
 * error naming it, which server.ts reports as a start error. Called at start-up and by services as they are created.
 */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const logLevel = (optional(env.LOG_LEVEL) ?? "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new Error(`Environment variable LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${env.LOG_LEVEL}"`);
  }
  const services = optional(env.SERVICES);
  const heartbeat = { interval: integer("HEARTBEAT_INTERVAL_MS", env.HEARTBEAT_INTERVAL_MS, 500) || 500, timeout: integer("HEARTBEAT_TIMEOUT_MS", env.HEARTBEAT_TIMEOUT_MS, 1500) || 1500 };
  if (heartbeat.timeout <= heartbeat.interval) {
    throw new Error(`Environment variable HEARTBEAT_TIMEOUT_MS (${heartbeat.timeout}) must be longer than HEARTBEAT_INTERVAL_MS (${heartbeat.interval})`);
  }
  const port = integer("PORT", env.PORT, 8081);
  return {
    nodeId: optional(env.NODE_ID) ?? `${hostname()}-${process.pid}`,
    namespace: optional(env.NAMESPACE) ?? "taskpool",
    transporter: optional(env.TRANSPORTER),
    services: services ? services.split(",").map((s) => s.trim()).filter(Boolean) : null,
    logLevel: logLevel as Environment["logLevel"],
    requestTimeoutMs: integer("REQUEST_TIMEOUT", env.REQUEST_TIMEOUT, 10_000) || 10_000,
    heartbeatIntervalMs: heartbeat.interval,
    heartbeatTimeoutMs: heartbeat.timeout,
    databaseUrl: optional(env.DATABASE_URL),
    mongoUrl: optional(env.MONGO_URL),
    viewStore: viewStore(env.VIEW_STORE),
    viewDatabaseUrl: optional(env.VIEW_DATABASE_URL),
    viewCountCap: integer("VIEW_COUNT_CAP", env.VIEW_COUNT_CAP, 2_000),
    dataDir: resolve(optional(env.DATA_DIR) ?? "./data"),
    port,
    metricsPort: integer("METRICS_PORT", env.METRICS_PORT, 0),
    metricsHost: optional(env.METRICS_HOST) ?? "127.0.0.1",
    tracingExporter: optional(env.TRACING_EXPORTER),
    host: optional(env.HOST) ?? "0.0.0.0",
    usersFile: optional(env.USERS_FILE),
    formUrls: optional(env.FORM_URLS),
    publicUrl: optional(env.PUBLIC_URL) ?? `http://localhost:${port}`,
    dataEntryDeletionStrategy: oneOf("DATA_ENTRY_DELETION_STRATEGY", env.DATA_ENTRY_DELETION_STRATEGY, ["lax", "strict"] as const, "lax"),
    eventMaxBytes: integer("EVENT_MAX_BYTES", env.EVENT_MAX_BYTES, 900 * 1024) || 900 * 1024,
    api: {
      waitTimeoutMs: integer("API_WAIT_TIMEOUT", env.API_WAIT_TIMEOUT, 5000),
      readyMaxLag: integer("READY_MAX_LAG", env.READY_MAX_LAG, 1000),
      sseRetentionMs: integer("SSE_RETENTION_MS", env.SSE_RETENTION_MS, 10 * 60_000),
      sseRetentionEvents: integer("SSE_RETENTION_EVENTS", env.SSE_RETENTION_EVENTS, 10_000),
      dashboardIntervalMs: integer("DASHBOARD_INTERVAL_MS", env.DASHBOARD_INTERVAL_MS, 2000) || 2000,
      answerCacheBytes: integer("API_ANSWER_CACHE_MB", env.API_ANSWER_CACHE_MB, 32) * 1024 * 1024,
    },
    engine: engineConnector(env),
  };
}
