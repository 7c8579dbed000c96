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
  dataDir: string;
  port: number;
  appPort: number;
  metricsPort: number;
  tracingExporter: string | null;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

function integer(name: string, raw: string | undefined, fallback: number): number {
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

const VIEW_STORES = ["postgres", "mongo", "memory"] as const;

function viewStore(raw: string | undefined): Environment["viewStore"] {
  const value = optional(raw)?.toLowerCase() ?? null;
  if (value !== null && !(VIEW_STORES as readonly string[]).includes(value)) {
    throw new Error(`Environment variable VIEW_STORE must be one of ${VIEW_STORES.join(", ")}, got "${raw}"`);
  }
  return value as Environment["viewStore"];
}

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
    dataDir: resolve(optional(env.DATA_DIR) ?? "./data"),
    port: integer("PORT", env.PORT, 8081),
    appPort: integer("APP_PORT", env.APP_PORT, 8080),
    metricsPort: integer("METRICS_PORT", env.METRICS_PORT, 0),
    tracingExporter: optional(env.TRACING_EXPORTER),
  };
}
