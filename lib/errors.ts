// The product's error vocabulary: Moleculer errors with a stable `type`; the gateway maps a type to its HTTP
// status (services/api.service.ts). Code outside this module creates errors only through these functions.
import { Errors } from "moleculer";

export const ErrorTypes = {
  VALIDATION: "VALIDATION_ERROR",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  RATE_LIMITED: "RATE_LIMITED",
  UNAVAILABLE: "SERVICE_UNAVAILABLE",
  EVENT_TOO_LARGE: "EVENT_TOO_LARGE",
  INVALID_EVENT_DATA: "INVALID_EVENT_DATA",
  TIMEOUT: "CONSISTENCY_TIMEOUT",
} as const;

export interface FieldProblem {
  field: string;
  message: string;
  type?: string;
  /** For a list (filters, sort): the position of the refused item. */
  index?: number;
  /** The rejected value, for callers inside the cluster; gateways never pass it on (errorResponse). */
  actual?: unknown;
}

/** Bad input, naming the fields (the same shape fastest-validator gives). */
export function validationError(message: string, problems: FieldProblem[]): Errors.MoleculerClientError {
  return new Errors.ValidationError(message, ErrorTypes.VALIDATION, problems as unknown as object);
}

export function notFound(message: string, data?: object): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 404, ErrorTypes.NOT_FOUND, data);
}

export function conflict(message: string, data?: object): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 409, ErrorTypes.CONFLICT, data);
}

export function unauthorized(message: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 401, ErrorTypes.UNAUTHORIZED);
}

export function forbidden(message: string): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 403, ErrorTypes.FORBIDDEN);
}

export function badEvent(type: typeof ErrorTypes.EVENT_TOO_LARGE | typeof ErrorTypes.INVALID_EVENT_DATA, message: string, data: object): Errors.MoleculerClientError {
  return new Errors.MoleculerClientError(message, 400, type, data);
}

/** A dependency (database, view store) cannot be reached; the caller may retry later. */
export function unavailable(message: string, data?: object): Errors.MoleculerRetryableError {
  return new Errors.MoleculerRetryableError(message, 503, ErrorTypes.UNAVAILABLE, data);
}

export function consistencyTimeout(message: string, data?: object): Errors.MoleculerRetryableError {
  return new Errors.MoleculerRetryableError(message, 503, ErrorTypes.TIMEOUT, data);
}

export function isErrorOfType(err: unknown, type: string): boolean {
  return typeof err === "object" && err !== null && (err as { type?: string }).type === type;
}

// SQLSTATEs that say "this database cannot serve you right now", not "your statement is wrong": connection
// exceptions (08…), admin/crash shutdown and "the database system is starting up" (57P01–57P03), too many
// connections (53300), and a read-only server (25006: a replica, or a primary being failed over).
const OUTAGE_SQLSTATE = /^(08\d{3}|57P0[123]|53300|25006)$/;
const OUTAGE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]);
const OUTAGE_MESSAGE =
  /Connection terminated|Timeout acquiring a connection|terminating connection|database system is (starting up|shutting down|in recovery mode)|read-only transaction|MongoServerSelectionError|MongoNetworkError|Topology is closed|PGlite is closed/;

/**
 * Whether a driver error (pg, knex, MongoDB) means the database is unreachable, starting, stopping or read-only:
 * an outage the caller may wait out, as opposed to a fault in the request.
 */
export function isDependencyOutage(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : "";
  if (OUTAGE_SQLSTATE.test(code) || OUTAGE_ERRNO.has(code)) return true;
  return OUTAGE_MESSAGE.test(`${String(e.name ?? "")} ${String(e.message ?? "")}`);
}

/** The typed, retryable 503 for a driver error that isDependencyOutage recognises; other errors unchanged. */
export function asDependencyOutage(err: unknown, what: string): unknown {
  if (!isDependencyOutage(err) || isErrorOfType(err, ErrorTypes.UNAVAILABLE)) return err;
  const e = err as { code?: unknown; message?: unknown };
  return unavailable(`${what} cannot be reached`, { reason: String(e.message ?? err), ...(typeof e.code === "string" ? { code: e.code } : {}) });
}
