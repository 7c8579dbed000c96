// The one broker configuration of every Taskpool node. Every setting comes from the environment
// (lib/env.ts lists the variables); the defaults are the ones we would run in production.
import type { BrokerOptions, Errors } from "moleculer";
import { readEnvironment, type Environment } from "./lib/env.ts";
import { LocalFirstStrategy } from "./lib/strategies.ts";
import { TaskpoolPrometheusReporter } from "./lib/metrics.ts";

// Retrying is safe only where the request cannot have run: no endpoint, a full queue, or a node that
// disconnected before answering (commands carry a commandId, so a rerun of those is deduplicated).
// A timeout is not retried: the command may well have been applied.
const RETRYABLE_TYPES = new Set(["SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND", "QUEUE_FULL", "REQUEST_REJECTED"]);

export function brokerConfig(env: Environment = readEnvironment()): BrokerOptions {
  return {
    namespace: env.namespace,
    nodeID: env.nodeId,
    transporter: env.transporter as BrokerOptions["transporter"],
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
      halfOpenTime: 10_000,
      check: (err: Error) => ((err as Errors.MoleculerError).code ?? 500) >= 500,
    },
    bulkhead: { enabled: false },
    heartbeatInterval: 5,
    heartbeatTimeout: 15,
    registry: { strategy: LocalFirstStrategy, preferLocal: false },
    // Services waiting for a dependency look again every 100 ms (Moleculer's 1 s cost the embedded start a second).
    dependencyInterval: 100,
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    validator: true,
    metrics: {
      enabled: true,
      // The separate metrics port shows host details without authentication: it listens on loopback unless
      // METRICS_HOST says otherwise (issue 13: operator endpoints need an operator).
      reporter: [new TaskpoolPrometheusReporter({ port: env.metricsPort, host: process.env.METRICS_HOST?.trim() || "127.0.0.1", path: "/metrics" }) as never],
    },
    tracing: env.tracingExporter
      ? { enabled: true, exporter: { type: env.tracingExporter as never }, sampling: { rate: 1.0 } }
      : { enabled: false },
    skipProcessEventRegistration: true,
  };
}

export default brokerConfig();
