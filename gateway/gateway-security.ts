// The front door's rules, shared by every HTTP gateway of the platform and of the process applications that run in
// it (services/api.service.ts, apps/approval/approval.service.ts): one authentication (JWT HS256 / RS256 / JWKS and the
// development header X-Current-User-ID, configured once from the environment), rate limiting keyed by the
// authenticated user or else the client address, CORS preflights answered here, unsupported methods refused,
// security headers on every response, bodies checked before any work, and errors that carry no stack and echo no
// input. A gateway wires it in two places: `gate()` in front of moleculer-web's request handler, `checkInput()`
// in its routes' onBeforeCall (after moleculer-web parsed the body).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import ApiGateway from "moleculer-web";
import { createRemoteJWKSet, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { ErrorTypes, forbidden, unauthorized, validationError, type FieldProblem } from "../lib/errors.ts";
import type { Directory } from "../lib/directory.ts";
import type { User } from "../domain/types.ts";
import { FORBIDDEN_KEYS } from "../domain/calendar.ts";

// ---- settings ---------------------------------------------------------------------------------------------------

export interface JwtSettings {
  /** HS256 with a shared secret, RS256 with one public key, or the keys of a JWKS endpoint (RS256 / ES256). */
  mode: "HS256" | "RS256" | "JWKS";
  secret: string | null;
  publicKey: string | null;
  jwksUrl: string | null;
  issuer: string | null;
  audience: string | null;
  usernameClaim: string;
  groupsClaim: string;
  /** Longest lifetime (exp − iat, or exp − now without iat) a token may have, seconds. */
  maxLifetimeSeconds: number;
}

export interface GatewaySecuritySettings {
  headerEnabled: boolean;
  jwt: JwtSettings | null;
  /** Members of this group may use the operator endpoints (dashboard, its API and stream, /metrics). */
  operatorGroup: string;
  /** Origins allowed to call from a browser (CORS); "*" allows any. Empty: no cross-origin access. */
  corsOrigins: string[];
  /** Requests per minute and caller (authenticated user, else client address). */
  rateLimit: number;
  streamsPerUser: number;
  streamsTotal: number;
}

function text(raw: string | undefined): string | null {
  return raw === undefined || raw.trim() === "" ? null : raw.trim();
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  const value = text(raw);
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`Environment variable ${name} must be a positive integer, got "${raw}"`);
  return n;
}

/**
 * The gateways' security settings from the environment variables given (README, "Configuration"); the caller passes
 * them (lib/env.ts `environmentVariables`): no module but lib/env.ts reads the process's environment.
 */
export function gatewaySecurityFromEnv(env: NodeJS.ProcessEnv): GatewaySecuritySettings {
  const secret = text(env.JWT_SECRET);
  const publicKey = text(env.JWT_PUBLIC_KEY) ?? (text(env.JWT_PUBLIC_KEY_FILE) ? readFileSync(text(env.JWT_PUBLIC_KEY_FILE)!, "utf8") : null);
  const jwksUrl = text(env.JWT_JWKS_URL);
  const configured = [secret, publicKey, jwksUrl].filter((k) => k !== null).length;
  if (configured > 1) throw new Error("Configure one JWT key only: JWT_SECRET, JWT_PUBLIC_KEY(_FILE) or JWT_JWKS_URL");
  const jwt: JwtSettings | null =
    configured === 0
      ? null
      : {
          mode: secret ? "HS256" : publicKey ? "RS256" : "JWKS",
          secret,
          publicKey,
          jwksUrl,
          issuer: text(env.JWT_ISSUER),
          audience: text(env.JWT_AUDIENCE),
          usernameClaim: text(env.JWT_USERNAME_CLAIM) ?? "preferred_username",
          groupsClaim: text(env.JWT_GROUPS_CLAIM) ?? "groups",
          maxLifetimeSeconds: positive("JWT_MAX_LIFETIME", env.JWT_MAX_LIFETIME, 3600),
        };
  // A configured key means production: the unauthenticated demo header is off unless asked for explicitly.
  const header = text(env.AUTH_HEADER_ENABLED);
  const headerEnabled = header === null ? jwt === null : header === "true";
  return {
    headerEnabled,
    jwt,
    operatorGroup: text(env.OPERATOR_GROUP) ?? "operators",
    corsOrigins: (text(env.CORS_ORIGINS) ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    rateLimit: positive("RATE_LIMIT", env.RATE_LIMIT, 1200),
    streamsPerUser: positive("SSE_MAX_STREAMS_PER_USER", env.SSE_MAX_STREAMS_PER_USER, 8),
    streamsTotal: positive("SSE_MAX_STREAMS", env.SSE_MAX_STREAMS, 1000),
  };
}

// ---- authentication ---------------------------------------------------------------------------------------------

export interface Caller {
  user: User & { id?: string };
  /** When the credential stops being valid (ms since the epoch); null: it does not expire (header mode). */
  expiresAt: number | null;
  operator: boolean;
}

/** What the gate learned about a request's credentials; the routes' `authenticate` answers from it. */
export type Identification = { caller: Caller } | { refused: Error } | { anonymous: true };

export class Authenticator {
  private key: Uint8Array | CryptoKey | JWTVerifyGetKey | null = null;
  readonly settings: GatewaySecuritySettings;
  private readonly directory: Directory;

  constructor(settings: GatewaySecuritySettings, directory: Directory) {
    this.settings = settings;
    this.directory = directory;
  }

  /** Which modes are on, for the start log. */
  describe(): string {
    const { jwt, headerEnabled } = this.settings;
    const modes = [
      jwt ? `Bearer JWT ${jwt.mode}${jwt.mode === "JWKS" ? ` (${jwt.jwksUrl})` : ""}, max lifetime ${jwt.maxLifetimeSeconds}s` : "Bearer JWT off (no key configured)",
      `X-Current-User-ID header ${headerEnabled ? "ON (development only)" : "off"}`,
      `operator group "${this.settings.operatorGroup}"${this.operatorsRequired ? "" : " (operator endpoints open: no JWT key configured)"}`,
    ];
    return `authentication: ${modes.join("; ")}`;
  }

  /** Operator endpoints need an operator once authentication is configured (a JWT key). */
  /**
   * Operator endpoints: with authentication configured (a JWT key), only members of the operator group; `always`:
   * even without (the demo login's user list). `caller`: what the authentication set on the call's meta.
   */
  assertOperator(caller: { operator?: boolean; user?: unknown }, always = false): void {
    if (!always && !this.operatorsRequired) return;
    if (caller.operator) return;
    if (!caller.user) throw this.missingCredentials();
    throw forbidden(`Only members of the operator group may use this`);
  }

  get operatorsRequired(): boolean {
    return this.settings.jwt !== null;
  }

  /**
   * The caller a request names, if any. `queryCredentials`: a browser's EventSource cannot send headers, so event
   * streams also take `access_token` (and, in header mode, `user`) from the query string.
   */
  async identify(req: IncomingMessage, queryCredentials: boolean): Promise<Identification> {
    const url = queryCredentials ? new URL(req.url ?? "/", "http://gateway") : null;
    const queryToken = url?.searchParams.get("access_token");
    const auth = req.headers.authorization ?? (queryToken ? `Bearer ${queryToken}` : undefined);
    try {
      if (auth) {
        const match = /^Bearer\s+(\S+)$/i.exec(auth);
        if (!match) throw unauthorized("The Authorization header must be 'Bearer <token>'");
        return { caller: await this.fromToken(match[1]!) };
      }
      const id = req.headers["x-current-user-id"] ?? url?.searchParams.get("user") ?? undefined;
      if (id !== undefined && id !== "") {
        if (!this.settings.headerEnabled) throw unauthorized("The X-Current-User-ID header is not accepted here; send a Bearer token");
        const user = this.directory.find(String(id));
        // The id is not echoed: a 401 must not reflect what the client sent.
        if (!user) throw unauthorized("Unknown user");
        return { caller: { user: { id: user.id, username: user.username, groups: user.groups }, expiresAt: null, operator: user.groups.includes(this.settings.operatorGroup) } };
      }
      return { anonymous: true };
    } catch (err) {
      return { refused: err as Error };
    }
  }

  /** The message of a 401 for a request without credentials. */
  missingCredentials(): Error {
    const { jwt, headerEnabled } = this.settings;
    if (jwt && headerEnabled) return unauthorized("Send a Bearer token or the X-Current-User-ID header");
    if (jwt) return unauthorized("Send a Bearer token");
    if (headerEnabled) return unauthorized("Send the X-Current-User-ID header (a user of the directory)");
    return unauthorized("No authentication is configured on this gateway");
  }

  private async verificationKey(jwt: JwtSettings): Promise<Uint8Array | CryptoKey | JWTVerifyGetKey> {
    if (this.key) return this.key;
    if (jwt.mode === "HS256") this.key = new TextEncoder().encode(jwt.secret!);
    else if (jwt.mode === "RS256") this.key = await importSPKI(jwt.publicKey!, "RS256");
    else this.key = createRemoteJWKSet(new URL(jwt.jwksUrl!));
    return this.key;
  }

  private async fromToken(token: string): Promise<Caller> {
    const jwt = this.settings.jwt;
    if (!jwt) throw unauthorized("Bearer tokens are not configured on this gateway");
    let payload: JWTPayload;
    try {
      const key = await this.verificationKey(jwt);
      const options = {
        algorithms: jwt.mode === "HS256" ? ["HS256"] : jwt.mode === "RS256" ? ["RS256"] : ["RS256", "ES256"],
        requiredClaims: ["exp"],
        ...(jwt.issuer ? { issuer: jwt.issuer } : {}),
        ...(jwt.audience ? { audience: jwt.audience } : {}),
      };
      // jose's overloads differ by key kind; both verify the same way.
      ({ payload } = typeof key === "function" ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options));
    } catch (err) {
      // jose's messages name the failed check ("exp" claim timestamp check failed, signature verification
      // failed, …) without repeating the token or a claim's value.
      throw unauthorized(`Invalid token: ${(err as Error).message}`.slice(0, 200));
    }
    const now = Math.floor(Date.now() / 1000);
    const exp = payload.exp!;
    const issued = typeof payload.iat === "number" ? Math.min(payload.iat, now) : now;
    if (exp - issued > jwt.maxLifetimeSeconds) throw unauthorized(`Invalid token: it lives longer than ${jwt.maxLifetimeSeconds}s`);
    const username = payload[jwt.usernameClaim] ?? payload.sub;
    if (typeof username !== "string" || username === "") throw unauthorized("The token names no user");
    const claimed = payload[jwt.groupsClaim];
    const groups = Array.isArray(claimed) ? claimed.map(String) : (this.directory.find(username)?.groups ?? []);
    return { user: { username, groups }, expiresAt: exp * 1000, operator: groups.includes(this.settings.operatorGroup) };
  }
}

// ---- errors -----------------------------------------------------------------------------------------------------

const STATUS: Record<string, number> = {
  [ErrorTypes.VALIDATION]: 400,
  INVALID_REQUEST_BODY: 400,
  INVALID_RESPONSE_TYPE: 400,
  BAD_REQUEST: 400,
  ENGINE_REFUSED: 400,
  [ErrorTypes.EVENT_TOO_LARGE]: 400,
  [ErrorTypes.INVALID_EVENT_DATA]: 400,
  [ErrorTypes.UNAUTHORIZED]: 401,
  NO_TOKEN: 401,
  INVALID_TOKEN: 401,
  [ErrorTypes.FORBIDDEN]: 403,
  [ErrorTypes.NOT_FOUND]: 404,
  METHOD_NOT_ALLOWED: 405,
  [ErrorTypes.CONFLICT]: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMIT_EXCEEDED: 429,
  [ErrorTypes.UNAVAILABLE]: 503,
  [ErrorTypes.TIMEOUT]: 503,
  SERVICE_NOT_AVAILABLE: 503,
  REQUEST_REJECTED: 503,
  QUEUE_FULL: 503,
  // The call may have run: the caller retries with the same commandId (README, "Failures and retries").
  REQUEST_TIMEOUT: 504,
};

/**
 * Types that say "the service is not there right now" rather than "no such thing". Every route of a gateway
 * names an action that exists, so an action that cannot be found means the nodes hosting it are down or
 * unreachable (NATS down): a retryable 503, never a 404 for something that exists.
 */
const NOT_THERE_NOW = new Set(["SERVICE_NOT_FOUND", "SERVICE_NOT_AVAILABLE", "REQUEST_REJECTED", "QUEUE_FULL"]);

/** Seconds a client should wait before retrying a 503 or 504 (fail-over takes about a second and a half). */
export const RETRY_AFTER_SECONDS = 1;

const MAX_MESSAGE = 300;

export interface ErrorBody {
  type: string;
  message: string;
  data?: unknown;
}

/**
 * Field problems without the rejected value (`actual`): an error names the field (and, for a list such as
 * `filters`, the index of the refused item), never echoes what was sent.
 */
function withoutInput(data: unknown): unknown {
  if (!Array.isArray(data)) return data;
  return data.map((item) => {
    if (typeof item !== "object" || item === null) return item;
    const { nodeID: _n, action: _a, actual: _v, ...rest } = item as Record<string, unknown>;
    return rest;
  });
}

/**
 * The JSON an error becomes: a stable type, a message, data — never a stack, never the rejected input. Errors of
 * body-parser (http-errors with `status` and `expose`) become 400 / 413 / 415 with fixed messages.
 */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  const e = (err ?? {}) as { name?: string; type?: string; code?: number | string; status?: number; expose?: boolean; message?: string; data?: unknown };
  // body-parser's errors (http-errors with `status`), also as moleculer-web passes them on: a MoleculerError with
  // body-parser's `type` (entity.parse.failed, encoding.unsupported, …) or zlib's code (Z_DATA_ERROR) for a body
  // that is not in its Content-Encoding.
  const bodyParserStatus =
    typeof e.status === "number" && e.expose === true && typeof e.code !== "number"
      ? e.status
      : typeof e.type === "string" && /^(entity|encoding|charset|request|stream)\./.test(e.type)
        ? typeof e.code === "number" ? e.code : 400
        : typeof e.code === "string" && e.code.startsWith("Z_")
          ? 400
          : null;
  if (bodyParserStatus !== null && bodyParserStatus >= 400 && bodyParserStatus < 500) {
    if (bodyParserStatus === 413) return { status: 413, body: { type: "PAYLOAD_TOO_LARGE", message: "The request body is too large" } };
    if (bodyParserStatus === 415) return { status: 415, body: { type: "UNSUPPORTED_MEDIA_TYPE", message: "Unsupported content type or content encoding" } };
    return { status: 400, body: { type: "BAD_REQUEST", message: "The request body could not be read (bad JSON, or not in its Content-Encoding)", data: [{ field: "body", message: "unreadable" }] } };
  }
  const byCode: Record<number, string> = { 400: "BAD_REQUEST", 401: ErrorTypes.UNAUTHORIZED, 403: ErrorTypes.FORBIDDEN, 404: ErrorTypes.NOT_FOUND, 405: "METHOD_NOT_ALLOWED", 409: ErrorTypes.CONFLICT, 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMIT_EXCEEDED" };
  let type: string = e.type ?? byCode[e.code as number] ?? "INTERNAL_ERROR";
  if (e.name === "ValidationError" || type === "VALIDATION_ERROR") type = ErrorTypes.VALIDATION;
  if (e.name === "NotFoundError" && !e.type) type = ErrorTypes.NOT_FOUND;
  if (type === "RATE_LIMIT_EXCEEDED") return { status: 429, body: { type: ErrorTypes.RATE_LIMITED, message: "Too many requests; slow down" } };
  if (NOT_THERE_NOW.has(type)) return { status: 503, body: { type: ErrorTypes.UNAVAILABLE, message: "The service is not reachable right now; retry shortly" } };
  const status = STATUS[type] ?? (typeof e.code === "number" && e.code >= 400 && e.code < 500 ? e.code : 500);
  if (status >= 500 && !(type in STATUS)) return { status: 500, body: { type: "INTERNAL_ERROR", message: "Internal error" } };
  let message = typeof e.message === "string" && e.message ? e.message : type;
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  const body: ErrorBody = { type, message };
  if (e.data !== undefined && status < 500) body.data = withoutInput(e.data);
  return { status, body };
}

// ---- input ------------------------------------------------------------------------------------------------------

/** Deepest nesting of a body or query a gateway accepts (payloads of forms are shallow; 5,000 overflowed the stack). */
export const MAX_DEPTH = 64;

function stringProblem(value: string): string | null {
  if (value.includes("\u0000")) return "contains a NUL character";
  // A lone surrogate is no Unicode text; PostgreSQL's jsonb refuses it.
  if (!value.isWellFormed()) return "contains a lone UTF-16 surrogate";
  return null;
}

/**
 * The first problem of a parsed request part: too deep, NUL characters or lone surrogates in keys or strings,
 * keys that reach the prototype. Iterative, so a hostile depth cannot overflow the stack here either.
 */
export function findInputProblem(value: unknown, root: string): FieldProblem | null {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const { value: item, path, depth } = stack.pop()!;
    if (typeof item === "string") {
      const problem = stringProblem(item);
      if (problem) return { field: path, type: "string", message: `The '${path}' field ${problem}.` };
      continue;
    }
    if (typeof item !== "object" || item === null) continue;
    if (depth >= MAX_DEPTH) return { field: path, type: "depth", message: `The '${path}' field is nested deeper than ${MAX_DEPTH} levels.` };
    if (Array.isArray(item)) {
      item.forEach((child, i) => stack.push({ value: child, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const key of Object.keys(item)) {
      const keyProblem = FORBIDDEN_KEYS.has(key) ? "is a reserved name (__proto__, constructor, prototype)" : stringProblem(key);
      // The offending key is not repeated: it may itself be the bad input.
      if (keyProblem) return { field: path, type: "key", message: `A key in the '${path}' field ${keyProblem}.` };
      stack.push({ value: (item as Record<string, unknown>)[key], path: `${path}.${key}`, depth: depth + 1 });
    }
  }
  return null;
}

/** Throws a 400 naming the field when the parsed params (body, query, path params) of a request are unsafe. */
export function checkInput(params: { body?: unknown; query?: unknown; params?: unknown } | undefined): void {
  if (!params) return;
  for (const part of ["body", "query", "params"] as const) {
    const problem = findInputProblem(params[part], part);
    if (problem) throw validationError("Parameters validation error!", [problem]);
  }
}

// ---- the gate: in front of moleculer-web ------------------------------------------------------------------------

const ALLOWED_METHODS = ["GET", "HEAD", "POST", "OPTIONS"];

/** Security headers of every response: pages, API, files. Scripts and styles only from the gateway itself. */
export const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
};

/**
 * Answers an error as JSON: its status and body from `errorResponse`, `Retry-After` on a 503 or 504, and a log line
 * for a 5xx that names the path only (a query string or body may carry what the user sent). Every gateway answers
 * its errors through here.
 */
export function sendError(
  res: ServerResponse,
  err: unknown,
  headers: Record<string, string> = {},
  log?: { req: IncomingMessage; logger: { error(...args: unknown[]): void; warn(...args: unknown[]): void } },
): void {
  const { status, body } = errorResponse(err);
  if (log && status >= 500) {
    const where = `${log.req.method} ${(log.req.url ?? "").split("?")[0]}`;
    if (status === 500) log.logger.error(`${where} failed: ${(err as Error)?.name}: ${(err as Error)?.message}`);
    else log.logger.warn(`${where}: ${body.type}: ${body.message}`);
  }
  if (res.headersSent) return;
  if (status === 503 || status === 504) headers = { "Retry-After": String(RETRY_AFTER_SECONDS), ...headers };
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

function httpError(status: number, type: string, message: string): Error & { code: number; type: string } {
  return Object.assign(new Error(message), { code: status, type });
}

/** One of moleculer-web's compiled aliases, as far as answering a request no alias took needs it. */
export interface RouteAlias {
  method: string;
  match(url: string): unknown;
}

/**
 * The answer to a request no route took (moleculer-web's `send404`): 405 with `Allow` when the path exists for
 * other methods (a POST to a path that only reads), 404 when no route has the path at all.
 */
export function sendUnrouted(aliases: readonly RouteAlias[], req: IncomingMessage & { originalUrl?: string }, res: ServerResponse): void {
  const path = (req.originalUrl ?? req.url ?? "/").split("?")[0]!;
  const methods = [...new Set(aliases.filter((alias) => alias.method !== "*" && alias.match(path)).map((alias) => alias.method))];
  if (methods.length > 0) {
    sendError(res, httpError(405, "METHOD_NOT_ALLOWED", "Method not allowed"), { Allow: [...methods, "OPTIONS"].join(", ") });
    return;
  }
  sendError(res, httpError(404, ErrorTypes.NOT_FOUND, "Not found"));
}

/** What the shared methods of a gated moleculer-web gateway need of it (the platform's API, a process application's). */
export interface GatedGateway {
  gate: Gate;
  /** moleculer-web's: the routes' aliases. */
  aliases: RouteAlias[];
  /** The gateway's own typed error answer (its authentication challenge). */
  sendApiError(req: IncomingMessage, res: ServerResponse, err: unknown): void;
}

/**
 * The moleculer-web methods every gated gateway shares: a request the gate refuses never reaches routing or body
 * parsing, one no route takes is a 405 or 404 (`sendUnrouted`), and every error is the gateway's typed answer with
 * no stack in the log. Spread into a gateway's `methods`; `gatedRouteError` is its routes' `onError`.
 */
export const gatedGatewayMethods = {
  send404(this: GatedGateway, req: IncomingMessage, res: ServerResponse): void {
    sendUnrouted(this.aliases, req, res);
  },
  errorHandler(this: GatedGateway, req: IncomingMessage, res: ServerResponse, err: unknown): void {
    this.sendApiError(req, res, err);
  },
  async httpHandler(this: GatedGateway, req: GatedRequest, res: ServerResponse, next?: (err?: unknown) => void): Promise<unknown> {
    try {
      if (!(await this.gate.admit(req, res))) return;
    } catch (err) {
      this.sendApiError(req, res, err);
      return;
    }
    return (ApiGateway.methods as { httpHandler: (...args: unknown[]) => unknown }).httpHandler.call(this, req, res, next);
  },
};

export function gatedRouteError(this: Pick<GatedGateway, "sendApiError">, req: IncomingMessage, res: ServerResponse, err: Error): void {
  this.sendApiError(req, res, err);
}

export interface GateOptions {
  /** Paths whose requests may carry credentials in the query string (event streams). */
  streamPaths: string[];
}

export interface GatedRequest extends IncomingMessage {
  $identification?: Identification;
}

type RateLimitStoreLike = { inc(key: string): number | Promise<number>; resetTime: number };

/**
 * Runs before moleculer-web sees a request, so that nothing — body parsing, routing, an action — happens for a
 * request that is refused. Answers (and returns false) for: unsupported methods (405), every OPTIONS (CORS
 * preflight or Allow), callers over their rate (429 with Retry-After), request bodies that are not JSON (415).
 */
export class Gate {
  private readonly store: RateLimitStoreLike;
  readonly auth: Authenticator;
  private readonly options: GateOptions;

  constructor(auth: Authenticator, options: GateOptions) {
    this.auth = auth;
    this.options = options;
    this.store = new ApiGateway.RateLimitStores.MemoryStore(60_000) as unknown as RateLimitStoreLike;
  }

  private allowedOrigin(req: IncomingMessage): string | null {
    const origin = req.headers.origin;
    if (!origin) return null;
    const allowed = this.auth.settings.corsOrigins;
    return allowed.includes("*") || allowed.includes(origin) ? origin : null;
  }

  async admit(req: GatedRequest, res: ServerResponse): Promise<boolean> {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const origin = this.allowedOrigin(req);
    if (origin) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Access-Control-Expose-Headers", "X-ElementCount, X-ElementCount-Capped, Location, Retry-After");
      res.setHeader("Vary", "Origin");
    }
    const method = (req.method ?? "").toUpperCase();
    if (!ALLOWED_METHODS.includes(method)) {
      sendError(res, httpError(405, "METHOD_NOT_ALLOWED", "Method not allowed"), { Allow: ALLOWED_METHODS.join(", ") });
      return false;
    }
    if (method === "OPTIONS") {
      // A preflight is answered here and never reaches a route, so an OPTIONS request can run no action.
      const headers: Record<string, string> = { Allow: ALLOWED_METHODS.join(", "), "Content-Length": "0" };
      if (origin && req.headers["access-control-request-method"]) {
        headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST";
        headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Current-User-ID, Last-Event-ID";
        headers["Access-Control-Max-Age"] = "600";
      }
      res.writeHead(204, headers);
      res.end();
      return false;
    }
    const path = (req.url ?? "/").split("?")[0]!;
    const identification = await this.auth.identify(req, this.options.streamPaths.includes(path));
    req.$identification = identification;
    // Only a verified user has a bucket of their own; anything else — no, refused, or bad credentials — counts
    // against the client's address, so that invented user ids or tokens gain nothing.
    const key = "caller" in identification ? `user:${identification.caller.user.username}` : `ip:${req.socket.remoteAddress ?? "unknown"}`;
    const count = await this.store.inc(key);
    const limit = this.auth.settings.rateLimit;
    res.setHeader("X-Rate-Limit-Limit", String(limit));
    res.setHeader("X-Rate-Limit-Remaining", String(Math.max(0, limit - count)));
    if (count > limit) {
      const retryAfter = Math.max(1, Math.ceil((this.store.resetTime - Date.now()) / 1000));
      sendError(res, httpError(429, "RATE_LIMIT_EXCEEDED", "Too many requests"), { "Retry-After": String(retryAfter) });
      return false;
    }
    if (method === "POST" && hasBody(req)) {
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
        sendError(res, httpError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json"));
        return false;
      }
    }
    return true;
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

/** The routes' `authenticate`: the caller the gate identified, or the reason it refused (401). */
export function callerOf(req: GatedRequest, auth: Authenticator, required: boolean): Caller | null {
  const identification = req.$identification ?? { anonymous: true as const };
  if ("caller" in identification) return identification.caller;
  if ("refused" in identification) throw identification.refused;
  if (required) throw auth.missingCredentials();
  return null;
}

// ---- pages ------------------------------------------------------------------------------------------------------

const inlineHashes = new Map<string, string>();

/**
 * An HTML page with the Content-Security-Policy that allows exactly its own inline scripts (by hash), so that
 * Swagger UI's small start script runs while nothing injected could.
 */
export function sendHtml(res: ServerResponse, file: string): void {
  let html: string;
  try {
    html = readFileSync(file, "utf8");
  } catch {
    sendError(res, httpError(404, ErrorTypes.NOT_FOUND, "Not found"));
    return;
  }
  let hashes = inlineHashes.get(file);
  if (hashes === undefined) {
    hashes = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash("sha256").update(m[1]!).digest("base64")}'`).join(" ");
    inlineHashes.set(file, hashes);
  }
  const csp = SECURITY_HEADERS["Content-Security-Policy"]!.replace("script-src 'self'", `script-src 'self'${hashes ? ` ${hashes}` : ""}`);
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", "Content-Security-Policy": csp });
  res.end(html);
}

// ---- event streams ----------------------------------------------------------------------------------------------

/** Caps open event streams per user and in total; `open` returns the release, or null when over a cap. */
export class StreamLimiter {
  private total = 0;
  private readonly perUser = new Map<string, number>();
  private readonly settings: Pick<GatewaySecuritySettings, "streamsPerUser" | "streamsTotal">;

  constructor(settings: Pick<GatewaySecuritySettings, "streamsPerUser" | "streamsTotal">) {
    this.settings = settings;
  }

  open(key: string): (() => void) | null {
    const mine = this.perUser.get(key) ?? 0;
    if (this.total >= this.settings.streamsTotal || mine >= this.settings.streamsPerUser) return null;
    this.total++;
    this.perUser.set(key, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perUser.get(key) ?? 1) - 1;
      if (left <= 0) this.perUser.delete(key);
      else this.perUser.set(key, left);
    };
  }
}

/** A 429 for a stream over its cap. */
export function tooManyStreams(res: ServerResponse): void {
  sendError(res, httpError(429, "RATE_LIMIT_EXCEEDED", "Too many open event streams"), { "Retry-After": "30" });
}

export { sendError as sendErrorResponse };
