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
