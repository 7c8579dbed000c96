// Every failure has a type and an honest status: database outages are typed 503s, a gateway that cannot find a
// service answers 503 (never 404), a timeout 504; the broker's circuit breaker ignores dependency outages.
import { describe, expect, it } from "vitest";
import { Errors } from "moleculer";
import { asDependencyOutage, ErrorTypes, isDependencyOutage, notFound, unavailable } from "../../../lib/errors.ts";
import { errorResponse } from "../../../services/api.service.ts";
import { brokerConfig, transporterOf } from "../../../moleculer.config.ts";
import { readEnvironment } from "../../../lib/env.ts";

function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("database outages", () => {
  it.each([
    ["57P03", "the database system is starting up"],
    ["57P01", "terminating connection due to administrator command"],
    ["08006", "connection failure"],
    ["25006", "cannot execute INSERT in a read-only transaction"],
    ["53300", "sorry, too many clients already"],
    ["ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:55432"],
    ["ECONNRESET", "read ECONNRESET"],
  ])("%s becomes a retryable SERVICE_UNAVAILABLE 503", (code, message) => {
    const err = pgError(code, message);
    expect(isDependencyOutage(err)).toBe(true);
    const typed = asDependencyOutage(err, "The event store database") as Errors.MoleculerRetryableError;
    expect(typed.type).toBe(ErrorTypes.UNAVAILABLE);
    expect(typed.code).toBe(503);
    expect(typed.retryable).toBe(true);
    expect(typed.data).toMatchObject({ code });
  });

  it("recognises a knex pool timeout and a connection ended mid-query by their messages", () => {
    expect(isDependencyOutage(new Error("Knex: Timeout acquiring a connection. The pool is probably full."))).toBe(true);
    expect(isDependencyOutage(new Error("Connection terminated unexpectedly"))).toBe(true);
  });

  it("leaves faults in the request alone: a unique violation, a syntax error, a wrong password", () => {
    for (const err of [pgError("23505", "duplicate key"), pgError("42601", "syntax error"), pgError("28P01", "password authentication failed")]) {
      expect(isDependencyOutage(err)).toBe(false);
      expect(asDependencyOutage(err, "x")).toBe(err);
    }
    expect(isDependencyOutage(null)).toBe(false);
    expect(isDependencyOutage("ECONNREFUSED")).toBe(false);
  });
});

describe("gateway status of each failure", () => {
  it("answers 503 SERVICE_UNAVAILABLE, never 404, when the service is not there (NATS down, nodes offline)", () => {
    for (const err of [
      new Errors.ServiceNotFoundError({ action: "view.taskForId" }),
      new Errors.ServiceNotAvailableError({ action: "task.claim", nodeID: "n1" }),
      new Errors.RequestRejectedError({ action: "task.claim", nodeID: "n1" }),
      new Errors.QueueIsFullError({ action: "task.claim", nodeID: "n1", size: 10, limit: 10 }),
    ]) {
      const { status, body } = errorResponse(err);
      expect(status, err.type).toBe(503);
      expect(body.type).toBe(ErrorTypes.UNAVAILABLE);
    }
  });

  it("answers 504 for a request timeout and 503 for a store outage; a real not-found stays 404", () => {
    expect(errorResponse(new Errors.RequestTimeoutError({ action: "task.claim", nodeID: "n1" })).status).toBe(504);
    expect(errorResponse(unavailable("The view store cannot be reached")).status).toBe(503);
    expect(errorResponse(asDependencyOutage(pgError("57P03", "the database system is starting up"), "The event store database")).status).toBe(503);
    expect(errorResponse(notFound("Task t1 not found")).status).toBe(404);
  });
});

describe("broker configuration for fail-over", () => {
  const config = brokerConfig(readEnvironment({ TRANSPORTER: "nats://127.0.0.1:4222" }));

  it("does not let a dependency outage or a client error open the circuit breaker, and half-opens after a second", () => {
    const check = (config.circuitBreaker as { check: (err: Error) => boolean }).check;
    expect(check(unavailable("The event store database cannot be reached"))).toBe(false);
    expect(check(notFound("x"))).toBe(false);
    expect(check(new Errors.RequestTimeoutError({ action: "task.claim", nodeID: "n1" }))).toBe(true);
    expect((config.circuitBreaker as { halfOpenTime: number }).halfOpenTime).toBeLessThanOrEqual(1000);
  });

  it("reconnects to NATS every 250 ms for ever, and keeps other transporters as given", () => {
    expect(transporterOf("nats://127.0.0.1:4222")).toMatchObject({ type: "NATS", options: { url: "nats://127.0.0.1:4222", maxReconnectAttempts: -1, reconnectTimeWait: 250 } });
    expect(transporterOf("TCP")).toBe("TCP");
    expect(transporterOf(null)).toBeUndefined();
  });

  it("refuses a heartbeat timeout not longer than the interval (a configuration error)", () => {
    expect(() => readEnvironment({ HEARTBEAT_INTERVAL_MS: "1000", HEARTBEAT_TIMEOUT_MS: "800" })).toThrow(/HEARTBEAT_TIMEOUT_MS/);
    expect(readEnvironment({})).toMatchObject({ heartbeatIntervalMs: 500, heartbeatTimeoutMs: 1500 });
  });
});
