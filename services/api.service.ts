// Service `api`: the front door (moleculer-web). The REST task-list API (compatible with Polyflow's example
// API), Server-Sent Events of the changes a user may see, the OpenAPI document and Swagger UI, the
// service-discovery dashboard, health, readiness and Prometheus metrics.
//
// Only the routes declared here are reachable: every route has explicit aliases and mappingPolicy "restrict",
// and no internal action ($node.*, commands, view.*) is mapped. A task or data entry the caller may not see
// answers exactly as one that does not exist.
//
// The REST API answers under /api and, the same routes again, under Polyflow's base path /polyflow-platform/rest,
// so that Polyflow's task list and clients generated from its contract work without a proxy.
import ApiGateway from "moleculer-web";
import type { Context, ServiceSchema } from "moleculer";
import { createReadStream, readFileSync } from "node:fs";
import { createHash, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import serveStatic from "serve-static";
import { importSPKI, jwtVerify, type JWTPayload } from "jose";
import { readEnvironment } from "../lib/env.ts";
import { ErrorTypes, notFound, unauthorized } from "../lib/errors.ts";
import { Directory } from "../lib/directory.ts";
import { openApiDocument, type OpenApiRoute } from "../lib/openapi.ts";
import { dataEntryDto, FormUrls, processDto, taskDto, viewSort } from "../lib/tasklist-dto.ts";
import { isoDate } from "../lib/params.ts";
import { compareTokens } from "../lib/tokens.ts";
import type { TaskpoolPrometheusReporter } from "../lib/metrics.ts";
import type { User } from "../domain/types.ts";
import type { ViewChange } from "./view.service.ts";

const require = createRequire(import.meta.url);
const swaggerUiDir = dirname(require.resolve("swagger-ui-dist/package.json"));
const publicDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "public");

interface Meta {
  user?: User & { id?: string };
  $statusCode?: number;
  $responseHeaders?: Record<string, string>;
  $responseType?: string;
}
type ApiContext<P = Record<string, any>> = Context<{ params: Record<string, string>; query: Record<string, any>; body: any } & P, Meta>;

// ---- HTTP status of each error type --------------------------------------------------------------------------

const STATUS: Record<string, number> = {
  [ErrorTypes.VALIDATION]: 400,
  INVALID_REQUEST_BODY: 400,
  INVALID_RESPONSE_TYPE: 400,
  BAD_REQUEST: 400,
  [ErrorTypes.EVENT_TOO_LARGE]: 400,
  [ErrorTypes.INVALID_EVENT_DATA]: 400,
  [ErrorTypes.UNAUTHORIZED]: 401,
  NO_TOKEN: 401,
  INVALID_TOKEN: 401,
  [ErrorTypes.FORBIDDEN]: 403,
  [ErrorTypes.NOT_FOUND]: 404,
  [ErrorTypes.CONFLICT]: 409,
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
 * Types that say "the service is not there right now" rather than "no such thing". Every alias of the gateway
 * names an action that exists, so an action that cannot be found means the nodes hosting it are down or
 * unreachable (NATS down): a retryable 503, never a 404 for something that exists.
 */
const NOT_THERE_NOW = new Set(["SERVICE_NOT_FOUND", "SERVICE_NOT_AVAILABLE", "REQUEST_REJECTED", "QUEUE_FULL"]);

/** Seconds a client should wait before retrying a 503 or 504 (fail-over takes about a second and a half). */
export const RETRY_AFTER_SECONDS = 1;

/** The JSON an error becomes: a stable type, a message, data — never a stack. */
export function errorResponse(err: any): { status: number; body: { type: string; message: string; data?: unknown } } {
  const name = err?.name as string | undefined;
  const byCode: Record<number, string> = { 400: "BAD_REQUEST", 401: ErrorTypes.UNAUTHORIZED, 403: ErrorTypes.FORBIDDEN, 404: ErrorTypes.NOT_FOUND, 409: ErrorTypes.CONFLICT, 429: "RATE_LIMIT_EXCEEDED" };
  let type: string = err?.type ?? byCode[err?.code as number] ?? "INTERNAL_ERROR";
  if (name === "ValidationError" || type === "VALIDATION_ERROR") type = ErrorTypes.VALIDATION;
  if (name === "NotFoundError" && !err?.type) type = ErrorTypes.NOT_FOUND;
  if (type === "RATE_LIMIT_EXCEEDED") return { status: 429, body: { type: ErrorTypes.RATE_LIMITED, message: "Too many requests; slow down" } };
  if (NOT_THERE_NOW.has(type)) return { status: 503, body: { type: ErrorTypes.UNAVAILABLE, message: "The service is not reachable right now; retry shortly" } };
  const status = STATUS[type] ?? (err?.code >= 400 && err?.code < 500 ? err.code : 500);
  if (status >= 500 && !(type in STATUS)) return { status: 500, body: { type: "INTERNAL_ERROR", message: "Internal error" } };
  const body: { type: string; message: string; data?: unknown } = { type: type === "NOT_FOUND" ? ErrorTypes.NOT_FOUND : type, message: err?.message ?? type };
  if (err?.data !== undefined && status < 500) {
    body.data = Array.isArray(err.data) ? err.data.map(({ nodeID: _n, action: _a, ...rest }: Record<string, unknown>) => rest) : err.data;
  }
  return { status, body };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent) return;
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

// ---- params ---------------------------------------------------------------------------------------------------

const taskId = { type: "object", props: { id: { type: "string", min: 1, max: 300 } } };
const noBody = { type: "any", optional: true };
const waitQuery = {
  type: "object",
  optional: true,
  props: { wait: { type: "boolean", convert: true, optional: true, description: "Answer once the view shows the effect" } },
};
const listQuery = {
  type: "object",
  props: {
    page: { type: "number", integer: true, min: 0, default: 0, convert: true, description: "0-based page" },
    size: { type: "number", integer: true, min: 1, max: 50, default: 50, convert: true, description: "Page size (at most 50)" },
    sort: { type: "array", items: "string", optional: true, convert: true, description: "+field / -field, repeatable (docs/filters.md)" },
    filters: { type: "array", items: "string", optional: true, convert: true, description: "<field><op><value>, repeatable (docs/filters.md)" },
  },
};
const arrayOf = (value: unknown) => (value === undefined ? undefined : Array.isArray(value) ? value : [value]);

const env = readEnvironment();
const rateLimit = Number(process.env.RATE_LIMIT ?? 1200);

/** Where Polyflow's example task list (and its OpenAPI contract) expects the REST API. */
export const POLYFLOW_BASE_PATH = "/polyflow-platform/rest";
/** The live event stream under both base paths (browsers' EventSource sends no headers: see authenticate). */
const EVENT_STREAM_PATHS = new Set(["/api/events", `${POLYFLOW_BASE_PATH}/events`]);

const ApiService: ServiceSchema<any> = {
  name: "api",
  mixins: [ApiGateway],
  dependencies: [],

  settings: {
    port: env.port,
    ip: process.env.HOST ?? "0.0.0.0",
    logRequest: "debug",
    logResponse: "debug",
    log4XXResponses: false,
    httpServerTimeout: 0, // event streams stay open
    // An event stream is not a request in flight: a stopping node must not wait for it to end.
    rootCallOptions(options: Record<string, unknown>, req: IncomingMessage) {
      const path = (req.url ?? "").split("?")[0];
      if (EVENT_STREAM_PATHS.has(path) || path === "/api/dashboard/events") options.tracking = false;
    },
    routes: [
      {
        name: "public",
        path: "/",
        mappingPolicy: "restrict",
        authentication: false,
        bodyParsers: false,
        aliases: {
          "GET /api/health": "api.health",
          "GET /api/ready": "api.ready",
          "GET /api/users": "api.users",
          // Polyflow's contract has the user list without authentication too (its login helper).
          [`GET ${POLYFLOW_BASE_PATH}/users`]: "api.users",
          "GET /api/openapi.json": "api.openapi",
          "GET /api/dashboard": "api.dashboard",
          "GET /api/dashboard/events"(this: any, req: IncomingMessage, res: ServerResponse) {
            this.openDashboardStream(req, res);
          },
          "GET /metrics"(this: any, _req: IncomingMessage, res: ServerResponse) {
            const reporter = (this.broker.metrics.reporter ?? []).find((r: object) => typeof (r as TaskpoolPrometheusReporter).render === "function");
            res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
            res.end(reporter ? reporter.render() : "");
          },
          "GET /"(this: any, _req: IncomingMessage, res: ServerResponse) {
            this.sendFile(res, join(publicDir, "index.html"), "text/html; charset=utf-8");
          },
          "GET /dashboard/"(this: any, _req: IncomingMessage, res: ServerResponse) {
            this.sendFile(res, join(publicDir, "dashboard", "index.html"), "text/html; charset=utf-8");
          },
          "GET /swagger-ui/"(this: any, _req: IncomingMessage, res: ServerResponse) {
            this.sendFile(res, join(publicDir, "swagger-ui", "index.html"), "text/html; charset=utf-8");
          },
        },
        onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
          this.sendApiError(req, res, err);
        },
      },
      {
        name: "rest",
        path: "/api",
        mappingPolicy: "restrict",
        authentication: true,
        mergeParams: false,
        bodyParsers: { json: { strict: false, limit: "1mb" } },
        rateLimit: {
          window: 60_000,
          limit: rateLimit,
          headers: true,
          key: (req: IncomingMessage) => {
            const auth = req.headers.authorization;
            if (auth) return `token:${createHash("sha256").update(auth).digest("hex").slice(0, 16)}`;
            const id = req.headers["x-current-user-id"];
            if (id) return `user:${id}`;
            return `ip:${req.socket.remoteAddress}`;
          },
        },
        aliases: {
          "GET /profile": "api.profile",
          "GET /processes": "api.processes",
          "POST /processes/:applicationName/:processDefinitionKey/start": "api.startProcess",
          "GET /process-starts/:processDefinitionId/:requestId": "api.processStart",
          "GET /tasks": "api.tasks",
          "GET /task/:id": "api.task",
          "POST /task/:id/claim": "api.claim",
          "POST /task/:id/unclaim": "api.unclaim",
          "POST /task/:id/defer": "api.defer",
          "POST /task/:id/undefer": "api.undefer",
          "POST /task/:id/complete": "api.complete",
          "GET /business-data-entries": "api.dataEntries",
          "GET /business-data-entries/:entryType/:entryId": "api.dataEntry",
          "GET /events"(this: any, req: IncomingMessage & { $ctx: Context<unknown, Meta> }, res: ServerResponse) {
            this.openEventStream(req, res);
          },
        },
        onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
          this.sendApiError(req, res, err);
        },
      },
      // Files: Swagger UI's own (next to our index page), the dashboard's and the task list's.
      { name: "swagger-ui-assets", path: "/swagger-ui", mappingPolicy: "restrict", use: [serveStatic(swaggerUiDir, { index: false })], aliases: {} },
      { name: "dashboard-assets", path: "/dashboard", mappingPolicy: "restrict", use: [serveStatic(join(publicDir, "dashboard"), { index: false })], aliases: {} },
      { name: "assets", path: "/assets", mappingPolicy: "restrict", use: [serveStatic(join(publicDir, "assets"), { index: false })], aliases: {} },
    ],
    onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
      this.sendApiError(req, res, err);
    },
  },

  actions: {
    health: {
      handler(this: any) {
        return { status: "UP", node: this.broker.nodeID, uptime: Math.round(process.uptime()) };
      },
    },

    ready: {
      async handler(this: any, ctx: ApiContext) {
        const reasons: string[] = [];
        let head: { globalPosition: number; token: string } | null = null;
        try {
          head = await ctx.call("eventstore.head", {}, { timeout: 3000 });
        } catch (err) {
          reasons.push(`event store unreachable: ${(err as Error).message}`);
        }
        let view: { token: string; globalPosition: number } | null = null;
        try {
          view = await ctx.call("view.position", {}, { timeout: 3000 });
        } catch (err) {
          reasons.push(`view unreachable: ${(err as Error).message}`);
        }
        let lag = 0;
        if (head && view && compareTokens(view.token, head.token) < 0) {
          // Counted after the view's token: positions are not in delivery order, so their difference is no lag.
          lag = ((await ctx.call("eventstore.countAfter", { token: view.token, cap: this.settings.readyMaxLag + 1 })) as { count: number }).count;
          if (lag > this.settings.readyMaxLag) reasons.push(`view is more than ${this.settings.readyMaxLag} events behind the event store`);
        }
        const body = { status: reasons.length === 0 ? "READY" : "NOT_READY", eventStorePosition: head?.globalPosition ?? null, viewPosition: view?.globalPosition ?? null, lag, reasons };
        if (reasons.length > 0) ctx.meta.$statusCode = 503;
        return body;
      },
    },

    users: {
      handler(this: any, ctx: ApiContext) {
        ctx.meta.$responseHeaders = { "X-ElementCount": String(this.directory.users.length) };
        return this.directory.users.map((u: { id: string; username: string; displayName?: string }) => ({ id: u.id, username: u.username, displayName: u.displayName ?? u.username }));
      },
    },

    openapi: {
      handler(this: any) {
        return this.openApi();
      },
    },

    profile: {
      handler(this: any, ctx: ApiContext) {
        const { username, groups } = ctx.meta.user!;
        const known = this.directory.find(username);
        return { username, groups, displayName: known?.displayName ?? username };
      },
    },

    processes: {
      async handler(this: any, ctx: ApiContext) {
        const defs = await ctx.call("view.processDefinitionsStartableByUser", { user: this.userOf(ctx) });
        // Every list carries its total (Polyflow's contract declares it here too); this one is never paged.
        ctx.meta.$responseHeaders = { "X-ElementCount": String((defs as unknown[]).length) };
        return (defs as Record<string, unknown>[]).map((d) => processDto(d, this.formUrls));
      },
    },

    processStart: {
      params: { params: { type: "object", props: { processDefinitionId: { type: "string", min: 1, max: 300 }, requestId: { type: "string", min: 1, max: 300 } } } },
      async handler(this: any, ctx: ApiContext) {
        const { processDefinitionId, requestId } = ctx.params.params;
        const record = (await ctx.call("processDefinition.startRequest", { processDefinitionId, requestId })) as { requestedBy: string } | null;
        // Someone else's request answers like an unknown one.
        if (!record || record.requestedBy !== this.userOf(ctx).username) throw notFound(`No start request ${requestId} of yours for ${processDefinitionId}`);
        return { requestId, ...record };
      },
    },

    startProcess: {
      params: {
        params: { type: "object", props: { applicationName: { type: "string", min: 1 }, processDefinitionKey: { type: "string", min: 1 } } },
        body: { type: "object", optional: true, strict: false, props: { businessKey: { type: "string", optional: true }, variables: { type: "object", optional: true, strict: false } } },
      },
      async handler(this: any, ctx: ApiContext) {
        const user = this.userOf(ctx);
        const defs = (await ctx.call("view.processDefinitionsStartableByUser", { user })) as { processDefinitionId: string; processDefinitionKey: string; applicationName: string }[];
        const definition = defs.find((d) => d.applicationName === ctx.params.params.applicationName && d.processDefinitionKey === ctx.params.params.processDefinitionKey);
        if (!definition) throw notFound(`No startable process ${ctx.params.params.processDefinitionKey} in ${ctx.params.params.applicationName}`);
        const requestId = randomUUID();
        const result = await ctx.call("processDefinition.requestStart", {
          processDefinitionId: definition.processDefinitionId,
          businessKey: ctx.params.body?.businessKey,
          variables: ctx.params.body?.variables ?? {},
          requestedBy: user.username,
          requestId,
          commandId: `start:${requestId}`,
        });
        ctx.meta.$statusCode = 202;
        return {
          requestId,
          processDefinitionId: definition.processDefinitionId,
          globalPosition: (result as { globalPosition: number }).globalPosition,
          // Where to ask what became of it (a refusal also arrives on the event stream as process-start-refused).
          status: `/api/process-starts/${encodeURIComponent(definition.processDefinitionId)}/${encodeURIComponent(requestId)}`,
        };
      },
    },

    tasks: {
      params: {
        query: {
          ...listQuery,
          props: {
            ...listQuery.props,
            assignedToMeOnly: { type: "boolean", convert: true, optional: true },
            involvementsOnly: { type: "boolean", convert: true, optional: true },
          },
        },
      },
      async handler(this: any, ctx: ApiContext) {
        const q = ctx.params.query;
        const result = (await ctx.call("view.tasksWithDataEntriesForUser", {
          user: this.userOf(ctx),
          page: q.page,
          size: q.size,
          sort: viewSort(arrayOf(q.sort), "task"),
          filters: arrayOf(q.filters),
          assignedToMeOnly: q.assignedToMeOnly ?? false,
          involvementsOnly: q.involvementsOnly ?? false,
        })) as { elements: { task: Record<string, unknown>; dataEntries: Record<string, unknown>[] }[]; totalElementCount: number };
        ctx.meta.$responseHeaders = { "X-ElementCount": String(result.totalElementCount) };
        return result.elements.map((e) => ({ task: taskDto(e.task, this.formUrls), dataEntries: e.dataEntries.map((d) => dataEntryDto(d, this.formUrls)) }));
      },
    },

    task: {
      params: { params: taskId },
      async handler(this: any, ctx: ApiContext) {
        const found = (await ctx.call("view.taskWithDataEntriesForId", { id: ctx.params.params.id, user: this.userOf(ctx) })) as {
          task: Record<string, unknown>;
          dataEntries: Record<string, unknown>[];
        } | null;
        if (!found) throw notFound(`Task ${ctx.params.params.id} not found`);
        return { task: taskDto(found.task, this.formUrls), dataEntries: found.dataEntries.map((d) => dataEntryDto(d, this.formUrls)) };
      },
    },

    claim: {
      params: { params: taskId, query: waitQuery, body: noBody },
      async handler(this: any, ctx: ApiContext) {
        const user = this.userOf(ctx);
        return this.interact(ctx, "task.claim", { assignee: user.username }, (task: Record<string, unknown> | null) => task?.assignee === user.username);
      },
    },
    unclaim: {
      params: { params: taskId, query: waitQuery, body: noBody },
      async handler(this: any, ctx: ApiContext) {
        return this.interact(ctx, "task.unclaim", {}, (task: Record<string, unknown> | null) => task !== null && task.assignee === null);
      },
    },
    defer: {
      params: { params: taskId, query: waitQuery, body: { ...isoDate({ optional: false }), description: "The follow-up date, an ISO-8601 date-time string" } },
      async handler(this: any, ctx: ApiContext) {
        const followUpDate = ctx.params.body as string;
        return this.interact(ctx, "task.defer", { followUpDate }, (task: Record<string, unknown> | null) => task?.followUpDate === followUpDate);
      },
    },
    undefer: {
      params: { params: taskId, query: waitQuery, body: noBody },
      async handler(this: any, ctx: ApiContext) {
        return this.interact(ctx, "task.undefer", {}, (task: Record<string, unknown> | null) => task !== null && task.followUpDate === null);
      },
    },
    complete: {
      params: { params: taskId, query: waitQuery, body: { type: "object", strict: false, optional: true, description: "The payload: variables to complete the task with" } },
      async handler(this: any, ctx: ApiContext) {
        const user = this.userOf(ctx);
        return this.interact(ctx, "task.requestCompletion", { payload: ctx.params.body ?? {}, assignee: user.username }, (task: Record<string, unknown> | null) => task === null);
      },
    },

    dataEntries: {
      params: { query: { ...listQuery, props: { ...listQuery.props, involvementsOnly: { type: "boolean", convert: true, optional: true } } } },
      async handler(this: any, ctx: ApiContext) {
        const q = ctx.params.query;
        const result = (await ctx.call("view.dataEntriesForUser", {
          user: this.userOf(ctx),
          page: q.page,
          size: q.size,
          sort: viewSort(arrayOf(q.sort), "dataEntry"),
          filters: arrayOf(q.filters),
          involvementsOnly: q.involvementsOnly ?? false,
        })) as { elements: Record<string, unknown>[]; totalElementCount: number };
        ctx.meta.$responseHeaders = { "X-ElementCount": String(result.totalElementCount) };
        return result.elements.map((d) => dataEntryDto(d, this.formUrls));
      },
    },

    dataEntry: {
      params: { params: { type: "object", props: { entryType: { type: "string", min: 1 }, entryId: { type: "string", min: 1 } } } },
      async handler(this: any, ctx: ApiContext) {
        const entry = await ctx.call("view.dataEntryForIdentity", { ...ctx.params.params, user: this.userOf(ctx) });
        if (!entry) throw notFound(`Data entry ${ctx.params.params.entryType}/${ctx.params.params.entryId} not found`);
        return dataEntryDto(entry as Record<string, unknown>, this.formUrls);
      },
    },

    dashboard: {
      async handler(this: any, ctx: ApiContext) {
        return this.clusterSnapshot(ctx);
      },
    },
  },

  events: {
    // An engine refused a start a user asked for: tell that user (on every gateway, wherever they are connected).
    "processDefinition.startRefused": {
      context: true,
      handler(this: any, ctx: Context<{ processDefinitionId: string; requestId: string; requestedBy: string; reason: string; globalPosition: number }>) {
        this.publishStartRefusal(ctx.params);
      },
    },
    "view.changed": {
      context: true,
      handler(this: any, ctx: Context<{ token: string; globalPosition: number; changes: ViewChange[] }>) {
        // Views in memory each project (and announce) every change: a gateway next to one listens to it alone.
        const local = this.broker.getLocalService("view") as { settings?: { store?: string } } | undefined;
        if (local?.settings?.store === "memory" && ctx.nodeID !== this.broker.nodeID) return;
        this.publishChanges(ctx.params);
      },
    },
  },

  methods: {
    // ---- authentication ----

    async authenticate(this: any, _ctx: Context, _route: unknown, req: IncomingMessage & { originalUrl?: string }): Promise<User & { id?: string }> {
      // A browser's EventSource cannot send headers: the event stream also takes them from the query string.
      const url = new URL(req.originalUrl ?? req.url ?? "/", "http://gateway");
      const isEventStream = EVENT_STREAM_PATHS.has(url.pathname);
      const token = isEventStream ? url.searchParams.get("access_token") : null;
      const auth = req.headers.authorization ?? (token ? `Bearer ${token}` : undefined);
      if (auth) {
        const match = /^Bearer\s+(.+)$/i.exec(auth);
        if (!match) throw unauthorized("The Authorization header must be 'Bearer <token>'");
        return this.userFromToken(match[1]);
      }
      const id = req.headers["x-current-user-id"] ?? (isEventStream ? url.searchParams.get("user") : null);
      if (id && this.settings.headerAuthentication) {
        const user = this.directory.find(String(id));
        if (!user) throw unauthorized(`Unknown user "${id}"`);
        return { id: user.id, username: user.username, groups: user.groups };
      }
      throw unauthorized(this.settings.headerAuthentication ? "Send the X-Current-User-ID header or a Bearer token" : "Send a Bearer token");
    },

    async userFromToken(this: any, token: string): Promise<User> {
      const key = await this.jwtKey();
      if (!key) throw unauthorized("Bearer tokens are not configured on this gateway (JWT_SECRET or JWT_PUBLIC_KEY)");
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [this.settings.jwt.algorithm],
          ...(this.settings.jwt.issuer ? { issuer: this.settings.jwt.issuer } : {}),
          ...(this.settings.jwt.audience ? { audience: this.settings.jwt.audience } : {}),
        }));
      } catch (err) {
        throw unauthorized(`Invalid token: ${(err as Error).message}`);
      }
      const username = (payload[this.settings.jwt.usernameClaim] ?? payload.sub) as string | undefined;
      if (!username) throw unauthorized("The token names no user");
      const claimed = payload[this.settings.jwt.groupsClaim];
      const groups = Array.isArray(claimed) ? claimed.map(String) : (this.directory.find(username)?.groups ?? []);
      return { username, groups };
    },

    async jwtKey(this: any): Promise<Uint8Array | CryptoKey | null> {
      if (this.jwtKeyCache !== undefined) return this.jwtKeyCache;
      const { secret, publicKey } = this.settings.jwt;
      this.jwtKeyCache = secret ? new TextEncoder().encode(secret) : publicKey ? await importSPKI(publicKey, "RS256") : null;
      return this.jwtKeyCache;
    },

    userOf(ctx: ApiContext): User {
      const { username, groups } = ctx.meta.user!;
      return { username, groups };
    },

    // ---- task interactions ----

    /**
     * A user's intent on a task: only on a task the user may see (else 404, as if it did not exist). With
     * ?wait=true the answer waits (bounded) until the view shows the effect — which for interactions arrives once
     * the owning engine has performed them — and says 202 when it did not within the bound.
     */
    async interact(this: any, ctx: ApiContext, action: string, params: object, effectShown: (task: Record<string, unknown> | null) => boolean) {
      const user = this.userOf(ctx);
      const id = ctx.params.params.id;
      const visible = await ctx.call("view.taskForId", { id, user });
      if (!visible) throw notFound(`Task ${id} not found`);
      // One commandId per HTTP request: the broker retries a call whose node died (REQUEST_REJECTED) on another
      // node with the same params, and the event store applies the command once.
      const result = (await ctx.call(action, { id, ...params, commandId: `api:${randomUUID()}` })) as { globalPosition: number };
      if (!ctx.params.query?.wait) {
        ctx.meta.$statusCode = 204;
        return null;
      }
      const deadline = Date.now() + this.settings.waitTimeoutMs;
      let minPosition = result.globalPosition;
      for (;;) {
        const task = await ctx.call("view.taskForId", { id, minPosition, maxWaitMs: Math.max(0, deadline - Date.now()) });
        if (effectShown(task as Record<string, unknown> | null)) {
          ctx.meta.$statusCode = 204;
          return null;
        }
        if (Date.now() >= deadline) break;
        minPosition = 0;
        await new Promise((r) => setTimeout(r, 50));
      }
      ctx.meta.$statusCode = 202;
      return { status: "ACCEPTED", message: "The request is accepted; its effect is not visible yet" };
    },

    // ---- errors and files ----

    sendApiError(this: any, req: IncomingMessage, res: ServerResponse, err: any) {
      const { status, body } = errorResponse(err);
      if (status === 500) this.logger.error(`${req.method} ${req.url} failed`, err);
      else if (status >= 500) this.logger.warn(`${req.method} ${req.url}: ${body.type}: ${body.message}`);
      const headers: Record<string, string> = {};
      if (status === 401) headers["WWW-Authenticate"] = 'Bearer realm="taskpool"';
      if (status === 503 || status === 504) headers["Retry-After"] = String(RETRY_AFTER_SECONDS);
      sendJson(res, status, body, headers);
    },

    sendFile(res: ServerResponse, file: string, type: string) {
      res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-cache" });
      createReadStream(file).pipe(res);
    },

    // ---- OpenAPI ----

    openApi(this: any) {
      if (this.openApiCache) return this.openApiCache;
      const action = (name: string) => this.schema.actions[name]?.params;
      const list = { type: "array", items: { type: "object" } };
      const count = { "X-ElementCount": { description: "Total number of matching elements", schema: { type: "integer" } } };
      const routes: OpenApiRoute[] = [
        { method: "GET", path: "/api/health", tag: "operations", summary: "The gateway is alive", authenticated: false, responses: { 200: { description: "Alive" } } },
        { method: "GET", path: "/api/ready", tag: "operations", summary: "Event store reachable and view caught up", authenticated: false, responses: { 200: { description: "Ready" }, 503: { description: "Not ready; reasons given" } } },
        { method: "GET", path: "/api/users", tag: "users", summary: "The users of the directory (for the demo login)", authenticated: false, responses: { 200: { description: "Users", schema: list } } },
        { method: "GET", path: "/api/profile", tag: "users", summary: "The calling user", authenticated: true, responses: { 200: { description: "Profile" } } },
        { method: "GET", path: "/api/processes", tag: "processes", summary: "Processes the caller may start", authenticated: true, responses: { 200: { description: "Process definitions", schema: list } } },
        { method: "POST", path: "/api/processes/:applicationName/:processDefinitionKey/start", tag: "processes", summary: "Start a process directly; the owning application's engine starts it", authenticated: true, params: action("startProcess"), responses: { 202: { description: "Accepted; `status` is where to ask what became of it" }, 404: { description: "No such startable process" }, 409: { description: "The process starts through its start form (its `url`)" } } },
        { method: "GET", path: "/api/process-starts/:processDefinitionId/:requestId", tag: "processes", summary: "What became of the caller's start request: requested, or refused with the engine's reason", authenticated: true, params: action("processStart"), responses: { 200: { description: "{ requestId, status, reason, … }" }, 404: { description: "Unknown (or someone else's) request" } } },
        { method: "GET", path: "/api/tasks", tag: "tasks", summary: "The caller's tasks with their data entries", authenticated: true, params: action("tasks"), responses: { 200: { description: "[{ task, dataEntries }]", schema: list, headers: count } } },
        { method: "GET", path: "/api/task/:id", tag: "tasks", summary: "One task with its data entries", authenticated: true, params: action("task"), responses: { 200: { description: "{ task, dataEntries }" }, 404: { description: "Not found (or not visible to the caller)" } } },
        ...(["claim", "unclaim", "defer", "undefer", "complete"] as const).map((name) => ({
          method: "POST",
          path: `/api/task/:id/${name}`,
          tag: "tasks",
          summary: { claim: "Claim the task", unclaim: "Give the task back", defer: "Defer to a follow-up date", undefer: "Clear the follow-up date", complete: "Complete with a payload" }[name],
          authenticated: true,
          params: action(name),
          responses: { 204: { description: "Accepted (with ?wait=true: the view shows the effect)" }, 202: { description: "?wait=true: accepted, the effect is not visible yet" }, 404: { description: "Not found (or not visible to the caller)" } },
        })),
        { method: "GET", path: "/api/business-data-entries", tag: "data entries", summary: "The caller's data entries", authenticated: true, params: action("dataEntries"), responses: { 200: { description: "Data entries", schema: list, headers: count } } },
        { method: "GET", path: "/api/business-data-entries/:entryType/:entryId", tag: "data entries", summary: "One data entry", authenticated: true, params: action("dataEntry"), responses: { 200: { description: "Data entry" }, 404: { description: "Not found (or not visible to the caller)" } } },
        { method: "GET", path: "/api/events", tag: "live updates", summary: "Server-Sent Events: task-added, task-changed, task-removed, data-entry-changed (resume with Last-Event-ID); process-start-refused", authenticated: true, contentType: "text/event-stream", responses: { 200: { description: "An event stream", schema: { type: "string" } } } },
        { method: "GET", path: "/api/dashboard", tag: "operations", summary: "Snapshot of the cluster for the dashboard", authenticated: false, responses: { 200: { description: "Nodes, services, events, processors" } } },
      ];
      this.openApiCache = openApiDocument(
        {
          title: "Taskpool API",
          version: "1.0.0",
          description:
            "One task list, one list of business objects and one start menu across process engines. Authenticate with X-Current-User-ID (demo) or a Bearer JWT. Errors are `{ type, message, data }`. " +
            `Every /api route also answers under ${POLYFLOW_BASE_PATH} (Polyflow's example task-list API).`,
        },
        routes,
      );
      return this.openApiCache;
    },

    // ---- live updates (SSE) ----

    openEventStream(this: any, req: IncomingMessage & { $ctx: Context<unknown, Meta> }, res: ServerResponse) {
      const user = req.$ctx.meta.user!;
      const principals = new Set([`user:${user.username}`, ...user.groups.map((g: string) => `group:${g}`)]);
      res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", Connection: "keep-alive", "X-Accel-Buffering": "no" });
      res.write(`retry: 3000\n: connected as ${user.username}\n\n`);
      const stream = { res, username: user.username, principals };
      const lastId = req.headers["last-event-id"];
      if (typeof lastId === "string" && lastId) {
        for (const item of this.sseHistory) if (compareEventIds(item.id, lastId) > 0) this.deliver(stream, item);
      }
      this.sseStreams.add(stream);
      const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
      this.openResponses.add(res);
      const close = () => {
        clearInterval(keepAlive);
        this.sseStreams.delete(stream);
        this.openResponses.delete(res);
      };
      req.on("close", close);
      res.on("close", close);
    },

    publishChanges(this: any, batch: { token: string; globalPosition: number; changes: ViewChange[] }) {
      const now = Date.now();
      batch.changes.forEach((change, index) => {
        if (change.collection !== "tasks" && change.collection !== "dataEntries") return;
        const item = { id: `${batch.token}/${index}`, at: now, position: batch.globalPosition, change };
        this.sseHistory.push(item);
        for (const stream of this.sseStreams) this.deliver(stream, item);
      });
      // Retention window: a client that reconnects within it loses nothing.
      const horizon = now - this.settings.sseRetentionMs;
      while (this.sseHistory.length > 0 && (this.sseHistory[0].at < horizon || this.sseHistory.length > this.settings.sseRetentionEvents)) this.sseHistory.shift();
    },

    /**
     * A refused start goes to the requester's open streams only. It has no event id: ids order the view's changes
     * for Last-Event-ID, which this is not one of; a client that missed it asks GET …/process-starts/….
     */
    publishStartRefusal(this: any, refusal: { processDefinitionId: string; requestId: string; requestedBy: string; reason: string; globalPosition: number }) {
      const data = JSON.stringify({ processDefinitionId: refusal.processDefinitionId, requestId: refusal.requestId, reason: refusal.reason, position: refusal.globalPosition });
      for (const stream of this.sseStreams) {
        if (stream.username === refusal.requestedBy) stream.res.write(`event: process-start-refused\ndata: ${data}\n\n`);
      }
    },

    deliver(stream: { res: ServerResponse; username: string; principals: Set<string> }, item: { id: string; position: number; change: ViewChange }) {
      const { change } = item;
      const was = change.before.some((p) => stream.principals.has(p));
      const is = change.after.some((p) => stream.principals.has(p));
      let event: string | null = null;
      if (change.collection === "tasks") {
        if (!was && is) event = "task-added";
        else if (was && is) event = "task-changed";
        else if (was && !is) event = "task-removed";
        // An engine refused what this user asked for: tell the user even if the task is no longer theirs.
        if (!event && change.refusal?.username === stream.username) event = "task-changed";
      } else if (was || is) {
        event = "data-entry-changed";
      }
      if (!event) return;
      const data = {
        id: change.id,
        change: change.change,
        position: item.position,
        ...(change.applicationName ? { applicationName: change.applicationName } : {}),
        ...(change.refusal ? { refusal: change.refusal } : {}),
      };
      stream.res.write(`id: ${item.id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },

    // ---- dashboard ----

    async clusterSnapshot(this: any, ctx: Context) {
      const [nodes, services, events] = await Promise.all([
        ctx.call("$node.list", {}) as Promise<any[]>,
        ctx.call("$node.services", { skipInternal: false, withActions: true, withEvents: true }) as Promise<any[]>,
        ctx.call("$node.events", { withEndpoints: true }) as Promise<any[]>,
      ]);
      const health: any[] = await Promise.all(
        nodes.map(async (node) => {
          if (!node.available) return null;
          try {
            return await ctx.call("$node.health", {}, { nodeID: node.id, timeout: 2000 });
          } catch {
            return null;
          }
        }),
      );
      let eventStore: unknown = null;
      let processors: unknown[] = [];
      try {
        const [head, rows] = await Promise.all([ctx.call("eventstore.head", {}, { timeout: 2000 }), ctx.call("eventstore.processors", {}, { timeout: 3000 })]);
        eventStore = head;
        processors = rows as unknown[];
      } catch {
        // No event store reachable: the dashboard shows that, the rest still answers.
      }
      return {
        at: new Date().toISOString(),
        nodes: nodes.map((node, i) => ({
          id: node.id,
          available: node.available,
          local: node.local,
          hostname: node.hostname,
          ipList: node.ipList,
          client: node.client,
          // Moleculer records the local uptime (s) at which the node went offline; the page wants a time.
          offlineSince: node.offlineSince == null ? null : new Date(Date.now() - (process.uptime() - node.offlineSince) * 1000).toISOString(),
          cpu: health[i]?.cpu?.utilization ?? node.cpu ?? null,
          memory: health[i] ? { free: health[i].mem.free, total: health[i].mem.total, rss: health[i].process?.memory?.rss ?? null } : null,
          uptime: health[i]?.process?.uptime ?? null,
        })),
        services: services.map((s) => ({
          name: s.name,
          fullName: s.fullName,
          version: s.version ?? null,
          nodes: s.nodes ?? [],
          available: s.available,
          actions: Object.values(s.actions ?? {}).map((a: any) => ({ name: a.name, visibility: a.visibility ?? "published" })),
          events: Object.keys(s.events ?? {}),
        })),
        events: events.map((e) => ({ name: e.name, group: e.group, subscribers: (e.endpoints ?? []).map((ep: any) => ep.nodeID) })),
        eventStore,
        processors,
      };
    },

    openDashboardStream(this: any, req: IncomingMessage, res: ServerResponse) {
      res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", Connection: "keep-alive", "X-Accel-Buffering": "no" });
      res.write("retry: 3000\n\n");
      let busy = false;
      const push = async () => {
        if (busy) return;
        busy = true;
        try {
          const snapshot = await this.clusterSnapshot(this.broker.ContextFactory.create(this.broker, null, {}, {}));
          res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
        } catch (err) {
          res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
        } finally {
          busy = false;
        }
      };
      void push();
      const timer = setInterval(() => void push(), this.settings.dashboardIntervalMs);
      const onChange = () => void push();
      this.dashboardListeners.add(onChange);
      this.openResponses.add(res);
      req.on("close", () => {
        clearInterval(timer);
        this.dashboardListeners.delete(onChange);
        this.openResponses.delete(res);
      });
    },
  },

  created(this: any) {
    this.directory = Directory.load();
    this.formUrls = FormUrls.fromEnvironment();
    this.sseStreams = new Set();
    this.openResponses = new Set();
    this.sseHistory = [];
    this.dashboardListeners = new Set();
    const jwtPublicKey = process.env.JWT_PUBLIC_KEY ?? (process.env.JWT_PUBLIC_KEY_FILE ? readFileSync(process.env.JWT_PUBLIC_KEY_FILE, "utf8") : undefined);
    this.settings.jwt = {
      secret: process.env.JWT_SECRET,
      publicKey: jwtPublicKey,
      algorithm: process.env.JWT_SECRET ? "HS256" : "RS256",
      issuer: process.env.JWT_ISSUER,
      audience: process.env.JWT_AUDIENCE,
      usernameClaim: process.env.JWT_USERNAME_CLAIM ?? "preferred_username",
      groupsClaim: process.env.JWT_GROUPS_CLAIM ?? "groups",
    };
    this.settings.headerAuthentication = (process.env.AUTH_HEADER_ENABLED ?? "true") !== "false";
    this.settings.waitTimeoutMs = Number(process.env.API_WAIT_TIMEOUT ?? 5000);
    this.settings.readyMaxLag = Number(process.env.READY_MAX_LAG ?? 1000);
    this.settings.sseRetentionMs = Number(process.env.SSE_RETENTION_MS ?? 10 * 60_000);
    this.settings.sseRetentionEvents = Number(process.env.SSE_RETENTION_EVENTS ?? 10_000);
    this.settings.dashboardIntervalMs = Number(process.env.DASHBOARD_INTERVAL_MS ?? 2000);
  },


  stopped(this: any) {
    // End the event streams, so that the HTTP server can close; browsers reconnect to another gateway.
    for (const res of this.openResponses) res.end();
    this.openResponses.clear();
  },

  started(this: any) {
    const address = this.server?.address();
    if (address && typeof address === "object") {
      this.logger.info(`Taskpool API listening on http://${address.address === "0.0.0.0" || address.address === "::" ? "localhost" : address.address}:${address.port} (task list /, REST /api, Swagger UI /swagger-ui/, dashboard /dashboard/)`);
    }
    this.broker.localBus.on("$node.**", () => {
      for (const listener of this.dashboardListeners) listener();
    });
  },
};

/** Event ids are "<token>/<index>": order by token, then by index. */
function compareEventIds(a: string, b: string): number {
  const [ta, ia] = a.split("/");
  const [tb, ib] = b.split("/");
  try {
    const byToken = compareTokens(ta!, tb!);
    return byToken !== 0 ? byToken : Number(ia) - Number(ib);
  } catch {
    return 1;
  }
}

// Polyflow's contract base path: every alias of the REST route ("rest") also under POLYFLOW_BASE_PATH. One route,
// not a copy: the same authentication, body parsers and rate limit (one count for both paths), and whatever treats
// the route "rest" specially treats both paths alike. The route therefore sits at the root, with full paths.
{
  const routes = ApiService.settings!.routes as { name: string; path: string; aliases: Record<string, unknown> }[];
  const rest = routes.find((route) => route.name === "rest")!;
  const aliases: Record<string, unknown> = {};
  for (const [key, target] of Object.entries(rest.aliases)) {
    const [method, path] = key.split(" ") as [string, string];
    aliases[`${method} ${rest.path}${path}`] = target;
    aliases[`${method} ${POLYFLOW_BASE_PATH}${path}`] = target;
  }
  rest.aliases = aliases;
  rest.path = "/";
}

export default ApiService;
