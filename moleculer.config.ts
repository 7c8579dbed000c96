// The one broker configuration of every Taskpool node. Every setting comes from the environment
// (lib/env.ts lists the variables); the defaults are the ones we would run in production.
import type { BrokerOptions, Errors } from "moleculer";
import { readEnvironment, type Environment } from "./lib/env.ts";
import { LocalFirstStrategy } from "./lib/strategies.ts";
import { FastDiscoverer } from "./lib/discoverer.ts";
import { TaskpoolPrometheusReporter } from "./lib/metrics.ts";
import { LazyValidator } from "./lib/validator.ts";

// Retrying is safe only where the request cannot have run: no endpoint, a full queue, or a node that
// disconnected before answering (commands carry a commandId, so a rerun of those is deduplicated).
// A timeout is not retried here: a command sent without a commandId may well have been applied. Callers that send
// a commandId may retry timeouts themselves (README, "Failures and retries").
const RETRYABLE_TYPES = new Set(["SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND", "QUEUE_FULL", "REQUEST_REJECTED"]);

// Outages of a shared dependency (the database) answer SERVICE_UNAVAILABLE from every node alike: opening the
// breaker on them would only turn an honest, retryable 503 into "no endpoint" for the breaker's half-open time.
const DEPENDENCY_OUTAGES = new Set(["SERVICE_UNAVAILABLE", "CONSISTENCY_TIMEOUT"]);

/**
 * The transporter: a NATS URL gets a reconnect wait of 250 ms instead of the client's 2 s, so that a node is back
 * within a second of NATS returning; it retries for ever. A node started while NATS is down retries too (Moleculer
 * logs "Connection is failed" and tries again every 5 s).
 */
export function transporterOf(url: string | null): BrokerOptions["transporter"] {
  if (!url) return undefined;
  if (!/^nats:\/\//i.test(url)) return url as BrokerOptions["transporter"];
  return {
    type: "NATS",
    options: { url, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 100 },
  } as BrokerOptions["transporter"];
}

export function brokerConfig(env: Environment = readEnvironment()): BrokerOptions {
  return {
    namespace: env.namespace,
    nodeID: env.nodeId,
    transporter: transporterOf(env.transporter),
    serializer: "JSON",
    logger: {
      type: "Console",
      options: { level: env.logLevel, colors: process.stdout.isTTY === true, formatter: "short", moduleColors: false },
    },
    requestTimeout: env.requestTimeoutMs,
    retryPolicy: {
      enabled: true,
      retries: 3,
      delay: 100,
      maxDelay: 1000,
      factor: 2,
      check: (err: Error) => RETRYABLE_TYPES.has((err as Errors.MoleculerError).type),
    },
    circuitBreaker: {
      enabled: true,
      threshold: 0.5,
      minRequestCount: 20,
      windowTime: 60,
      // A recovered endpoint gets its trial call after a second, not ten.
      halfOpenTime: 1000,
      check: (err: Error) => ((err as Errors.MoleculerError).code ?? 500) >= 500 && !DEPENDENCY_OUTAGES.has((err as Errors.MoleculerError).type),
    },
    bulkhead: { enabled: false },
    // A node killed without a goodbye is marked offline within HEARTBEAT_TIMEOUT_MS (plus a quarter of it), and
    // the requests pending on it are rejected and retried elsewhere (lib/discoverer.ts).
    heartbeatInterval: env.heartbeatIntervalMs / 1000,
    heartbeatTimeout: env.heartbeatTimeoutMs / 1000,
    registry: {
      strategy: LocalFirstStrategy,
      preferLocal: false,
      discoverer: new FastDiscoverer({ heartbeatIntervalMs: env.heartbeatIntervalMs, heartbeatTimeoutMs: env.heartbeatTimeoutMs }) as never,
    },
    // Services waiting for a dependency look again every 100 ms (Moleculer's 1 s cost the embedded start a second).
    dependencyInterval: 100,
    // A stopping service waits this long for the requests it is serving; calls they made to other nodes are
    // answered 503 after a second (server.ts), so a node stops within 2 s of SIGTERM.
    tracking: { enabled: true, shutdownTimeout: 1500 },
    // fastest-validator, each schema compiled on its first use (lib/validator.ts).
    validator: new LazyValidator() as never,
    metrics: {
      enabled: true,
      // The separate metrics port shows host details without authentication: it listens on loopback unless
      // METRICS_HOST says otherwise (issue 13: operator endpoints need an operator).
      reporter: [new TaskpoolPrometheusReporter({ port: env.metricsPort, host: env.metricsHost, path: "/metrics" }) as never],
    },
    tracing: env.tracingExporter
      ? { enabled: true, exporter: { type: env.tracingExporter as never }, sampling: { rate: 1.0 } }
      : { enabled: false },
    skipProcessEventRegistration: true,
  };
}

export default brokerConfig();
