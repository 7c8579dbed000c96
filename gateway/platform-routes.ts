// The platform gateway's routes (services/api.service.ts): one table per route of the gateway, serving and
// documenting them (gateway/route-table.ts), the params of the actions behind them (they validate, and document the
// operations), and the OpenAPI document built from both.
//
// Only the routes declared here are reachable: every route has explicit aliases and mappingPolicy "restrict",
// and no internal action ($node.*, commands, view.*) is mapped.
//
// The REST API answers under /api and, the same routes again, under Polyflow's base path /polyflow-platform/rest,
// so that Polyflow's task list and clients generated from its contract work without a proxy.
import { createRequire } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "moleculer";
import serveStatic from "serve-static";
import { isoDate } from "../lib/params.ts";
import type { JsonObject } from "../lib/json.ts";
import type { User } from "../domain/types.ts";
import { checkInput, sendHtml, type Caller, type GatedRequest } from "./gateway-security.ts";
import { openApiDocument } from "./openapi.ts";
import { aliasesOf, openApiRoutesOf, type TableRoute } from "./route-table.ts";
import { INTERACTION_SUMMARIES, type ListQuery } from "./task-list.ts";
import type { ActionName } from "../lib/actions.ts";

const require = createRequire(import.meta.url);
export const SWAGGER_UI_DIR = dirname(require.resolve("swagger-ui-dist/package.json"));
export const PUBLIC_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "public");

/** Where Polyflow's example task list (and its OpenAPI contract) expects the REST API. */
export const POLYFLOW_BASE_PATH = "/polyflow-platform/rest";
/** The live event stream under both base paths (browsers' EventSource sends no headers: see authenticate). */
export const EVENT_STREAM_PATHS = new Set(["/api/events", `${POLYFLOW_BASE_PATH}/events`]);
export const DASHBOARD_STREAM_PATH = "/api/dashboard/events";
/** Streams whose credentials may come in the query string (gateway/gateway-security.ts: EventSource sends no headers). */
export const STREAM_PATHS = [...EVENT_STREAM_PATHS, DASHBOARD_STREAM_PATH];

/** A REST route also under Polyflow's base path. */
export const restPaths = (path: string) => [path, path.replace(/^\/api/, POLYFLOW_BASE_PATH)];

/** The meta of the gateway's calls. */
export interface ApiMeta {
  user?: User & { id?: string };
  /** Set by the gateway's authentication: the caller belongs to the operator group. */
  operator?: boolean;
  $statusCode?: number;
  $responseHeaders?: Record<string, string>;
  $responseType?: string;
}

/** A request the gateway answers itself (streams, metrics), as moleculer-web hands it over. */
export type GatewayRequest = GatedRequest & { $ctx: Context<unknown, ApiMeta>; $caller?: Caller | null };

/** What the routes' own handlers need of the gateway (moleculer-web calls them with the service as `this`). */
export interface PlatformGateway {
  openEventStream(req: GatewayRequest, res: ServerResponse): void;
  openDashboardStream(req: GatewayRequest, res: ServerResponse): void;
  sendMetrics(req: GatewayRequest, res: ServerResponse): void;
}

// ---- params ----

// The filter and sort grammar of docs/filters.md, as the OpenAPI document states it (so generated examples are
// meaningful); view/filters.ts remains the full check (known fields, typed values).
// The value after the operator is free text: the pattern ends there.
const FILTER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*(\[\]|=|%|<|>)/;
const SORT_PATTERN = /^[+-]?[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;

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
    sort: { type: "array", items: { type: "string", pattern: SORT_PATTERN }, optional: true, convert: true, description: "+field / -field, repeatable (docs/filters.md)" },
    filters: { type: "array", items: { type: "string", pattern: FILTER_PATTERN }, optional: true, convert: true, description: "<field><op><value>, repeatable (docs/filters.md)" },
  },
};
const flag = { type: "boolean", convert: true, optional: true };

/** What moleculer-web hands an action of the REST route (mergeParams: false): the path's params, the query, the body. */
export interface RestParams<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  params: P;
  query: Q;
  body: B;
}
type TaskParams<Q = { wait?: boolean } | undefined, B = unknown> = RestParams<{ id: string }, Q, B>;

/**
 * The params of the gateway's actions, by action name, as their handlers read them (lib/actions.ts names them
 * `api.<name>`): ACTION_PARAMS below checks those that take any (its keys are among these), and documents them.
 */
export interface ApiActionParams {
  health: Record<string, unknown>;
  ready: Record<string, unknown>;
  users: Record<string, unknown>;
  openapi: Record<string, unknown>;
  dashboard: Record<string, unknown>;
  profile: RestParams;
  processes: RestParams;
  processStart: RestParams<{ processDefinitionId: string; requestId: string }>;
  startProcess: RestParams<{ applicationName: string; processDefinitionKey: string }, Record<string, unknown>, { businessKey?: string; variables?: JsonObject } | undefined>;
  tasks: RestParams<Record<string, string>, ListQuery>;
  task: TaskParams<Record<string, unknown>>;
  claim: TaskParams;
  unclaim: TaskParams;
  /** The follow-up date, an ISO-8601 date-time string. */
  defer: TaskParams<{ wait?: boolean } | undefined, string>;
  undefer: TaskParams;
  /** The payload to complete the task with. */
  complete: TaskParams<{ wait?: boolean } | undefined, Record<string, unknown> | undefined>;
  dataEntries: RestParams<Record<string, string>, ListQuery>;
  dataEntry: RestParams<{ entryType: string; entryId: string }>;
}

/** The params of the gateway's actions (fastest-validator), by action name: they validate, and document the operations. */
export const ACTION_PARAMS = {
  processStart: { params: { type: "object", props: { processDefinitionId: { type: "string", min: 1, max: 300 }, requestId: { type: "string", min: 1, max: 300 } } } },
  startProcess: {
    params: { type: "object", props: { applicationName: { type: "string", min: 1 }, processDefinitionKey: { type: "string", min: 1 } } },
    body: { type: "object", optional: true, strict: false, props: { businessKey: { type: "string", optional: true }, variables: { type: "object", optional: true, strict: false } } },
  },
  tasks: { query: { ...listQuery, props: { ...listQuery.props, assignedToMeOnly: flag, involvementsOnly: flag } } },
  task: { params: taskId },
  claim: { params: taskId, query: waitQuery, body: noBody },
  unclaim: { params: taskId, query: waitQuery, body: noBody },
  defer: { params: taskId, query: waitQuery, body: { ...isoDate({ optional: false }), description: "The follow-up date, an ISO-8601 date-time string" } },
  undefer: { params: taskId, query: waitQuery, body: noBody },
  complete: { params: taskId, query: waitQuery, body: { type: "object", strict: false, optional: true, description: "The payload: variables to complete the task with" } },
  dataEntries: { query: { ...listQuery, props: { ...listQuery.props, involvementsOnly: flag } } },
  dataEntry: { params: { type: "object", props: { entryType: { type: "string", min: 1 }, entryId: { type: "string", min: 1 } } } },
} satisfies { [K in keyof ApiActionParams]?: Partial<Record<keyof ApiActionParams[K], object>> };

// ---- the routes ----

const list = { type: "array", items: { type: "object" } };
const count = {
  "X-ElementCount": { description: "Total number of matching elements (exact up to VIEW_COUNT_CAP, default 2,000; the cap beyond it)", schema: { type: "integer" } },
  "X-ElementCount-Capped": { description: "Present (true) when more elements match than X-ElementCount says: the count stopped at the cap", schema: { type: "boolean" } },
};
const notVisible = { description: "Not found (or not visible to the caller)" };

/** Routes open to anonymous callers (an operator's credentials open the operator endpoints). */
export const PUBLIC_ROUTES: TableRoute<ActionName>[] = [
  { method: "GET", path: "/api/health", action: "api.health", doc: { tag: "operations", summary: "The gateway is alive", authenticated: false, responses: { 200: { description: "Alive" } } } },
  { method: "GET", path: "/api/ready", action: "api.ready", doc: { tag: "operations", summary: "Event store reachable and view caught up", authenticated: false, responses: { 200: { description: "Ready" }, 503: { description: "Not ready; reasons given" } } } },
  { method: "GET", path: "/api/users", action: "api.users", doc: { tag: "users", summary: "The users of the directory (for the demo login)", authenticated: false, responses: { 200: { description: "Users", schema: list } } } },
  // Polyflow's contract has the user list without authentication too (its login helper).
  { method: "GET", path: `${POLYFLOW_BASE_PATH}/users`, action: "api.users" },
  { method: "GET", path: "/api/openapi.json", action: "api.openapi" },
  { method: "GET", path: "/api/dashboard", action: "api.dashboard", doc: { tag: "operations", summary: "Snapshot of the cluster for the dashboard", authenticated: false, responses: { 200: { description: "Nodes, services, events, processors" } } } },
  {
    method: "GET",
    path: DASHBOARD_STREAM_PATH,
    handler(this: PlatformGateway, req: GatewayRequest, res: ServerResponse) {
      this.openDashboardStream(req, res);
    },
  },
  {
    method: "GET",
    path: "/metrics",
    handler(this: PlatformGateway, req: GatewayRequest, res: ServerResponse) {
      this.sendMetrics(req, res);
    },
  },
  { method: "GET", path: "/", handler: (_req, res) => sendHtml(res, join(PUBLIC_DIR, "index.html")) },
  { method: "GET", path: "/dashboard/", handler: (_req, res) => sendHtml(res, join(PUBLIC_DIR, "dashboard", "index.html")) },
  { method: "GET", path: "/swagger-ui/", handler: (_req, res) => sendHtml(res, join(PUBLIC_DIR, "swagger-ui", "index.html")) },
];

/** The REST API of the task list (Polyflow's example task-list API), for authenticated callers. */
export const REST_ROUTES: TableRoute<ActionName>[] = [
  { method: "GET", path: "/api/profile", action: "api.profile", doc: { tag: "users", summary: "The calling user", authenticated: true, responses: { 200: { description: "Profile" } } } },
  { method: "GET", path: "/api/processes", action: "api.processes", doc: { tag: "processes", summary: "Processes the caller may start", authenticated: true, responses: { 200: { description: "Process definitions", schema: list } } } },
  {
    method: "POST",
    path: "/api/processes/:applicationName/:processDefinitionKey/start",
    action: "api.startProcess",
    doc: {
      tag: "processes",
      summary: "Start a process directly; the owning application's engine starts it",
      authenticated: true,
      responses: { 202: { description: "Accepted; `status` is where to ask what became of it" }, 404: { description: "No such startable process" }, 409: { description: "The process starts through its start form (its `url`)" } },
    },
  },
  {
    method: "GET",
    path: "/api/process-starts/:processDefinitionId/:requestId",
    action: "api.processStart",
    doc: {
      tag: "processes",
      summary: "What became of the caller's start request: requested, or refused with the engine's reason",
      authenticated: true,
      responses: { 200: { description: "{ requestId, status, reason, … }" }, 404: { description: "Unknown (or someone else's) request" } },
    },
  },
  { method: "GET", path: "/api/tasks", action: "api.tasks", doc: { tag: "tasks", summary: "The caller's tasks with their data entries", authenticated: true, responses: { 200: { description: "[{ task, dataEntries }]", schema: list, headers: count } } } },
  { method: "GET", path: "/api/task/:id", action: "api.task", doc: { tag: "tasks", summary: "One task with its data entries", authenticated: true, responses: { 200: { description: "{ task, dataEntries }" }, 404: notVisible } } },
  ...Object.entries(INTERACTION_SUMMARIES).map(
    ([name, summary]): TableRoute<ActionName> => ({
      method: "POST",
      path: `/api/task/:id/${name}`,
      // Object.entries widens the keys to string; they are INTERACTION_SUMMARIES's, the interaction actions' names.
      action: `api.${name as keyof typeof INTERACTION_SUMMARIES}`,
      doc: {
        tag: "tasks",
        summary,
        authenticated: true,
        responses: { 204: { description: "Accepted (with ?wait=true: the view shows the effect)" }, 202: { description: "?wait=true: accepted, the effect is not visible yet" }, 404: notVisible },
      },
    }),
  ),
  { method: "GET", path: "/api/business-data-entries", action: "api.dataEntries", doc: { tag: "data entries", summary: "The caller's data entries", authenticated: true, responses: { 200: { description: "Data entries", schema: list, headers: count } } } },
  { method: "GET", path: "/api/business-data-entries/:entryType/:entryId", action: "api.dataEntry", doc: { tag: "data entries", summary: "One data entry", authenticated: true, responses: { 200: { description: "Data entry" }, 404: notVisible } } },
  {
    method: "GET",
    path: "/api/events",
    handler(this: PlatformGateway, req: GatewayRequest, res: ServerResponse) {
      this.openEventStream(req, res);
    },
    doc: {
      tag: "live updates",
      summary: "Server-Sent Events: task-added, task-changed, task-removed, data-entry-changed (resume with Last-Event-ID); process-start-refused",
      authenticated: true,
      contentType: "text/event-stream",
      responses: { 200: { description: "An event stream", schema: { type: "string" } } },
    },
  },
];

let document: ReturnType<typeof openApiDocument> | undefined;

/** The gateway's OpenAPI document (built once). */
export function platformOpenApi(): ReturnType<typeof openApiDocument> {
  document ??= openApiDocument(
    {
      title: "Taskpool API",
      version: "1.0.0",
      description:
        "One task list, one list of business objects and one start menu across process engines. Authenticate with X-Current-User-ID (demo) or a Bearer JWT. Errors are `{ type, message, data }`. " +
        `Every /api route also answers under ${POLYFLOW_BASE_PATH} (Polyflow's example task-list API).`,
    },
    openApiRoutesOf([...PUBLIC_ROUTES, ...REST_ROUTES], (action) => ACTION_PARAMS[action.replace(/^api\./, "") as keyof typeof ACTION_PARAMS]),
  );
  return document;
}

/** An event stream is not a request in flight: a stopping node must not wait for it to end (moleculer-web's rootCallOptions). */
export function untrackedStreams(options: Record<string, unknown>, req: IncomingMessage): void {
  const path = (req.url ?? "").split("?")[0]!;
  if (EVENT_STREAM_PATHS.has(path) || path === DASHBOARD_STREAM_PATH) options.tracking = false;
}

const files = (name: string, path: string, dir: string) => ({ name, path, mappingPolicy: "restrict", use: [serveStatic(dir, { index: false })], aliases: {} });

/** The gateway's moleculer-web routes; `onError` answers a route's errors (called with the service as `this`). */
export function gatewayRoutes(onError: (req: IncomingMessage, res: ServerResponse, err: Error) => void): object[] {
  return [
    {
      name: "public",
      path: "/",
      mappingPolicy: "restrict",
      // Optional: an operator's credentials open the operator endpoints; anonymous callers get the rest.
      authentication: true,
      bodyParsers: false,
      onBeforeCall: (_ctx: Context, _route: unknown, req: GatedRequest & { query?: unknown }) => checkInput({ query: req.query }),
      aliases: aliasesOf(PUBLIC_ROUTES),
      onError,
    },
    {
      name: "rest",
      path: "/",
      mappingPolicy: "restrict",
      authentication: true,
      mergeParams: false,
      bodyParsers: { json: { strict: false, limit: "1mb" } },
      // Rate limiting is the gate's (gateway/gateway-security.ts): it runs before the body is parsed.
      onBeforeCall: (_ctx: Context, _route: unknown, req: GatedRequest & { $params?: { body?: unknown; query?: unknown; params?: unknown } }) => checkInput(req.$params),
      // Every route also under Polyflow's base path: one route, not a copy — the same authentication, body parsers
      // and rate limit (one count for both paths); the route therefore sits at the root, with full paths.
      aliases: aliasesOf(REST_ROUTES, restPaths),
      onError,
    },
    // Files: Swagger UI's own (next to our index page), the dashboard's and the task list's.
    files("swagger-ui-assets", "/swagger-ui", SWAGGER_UI_DIR),
    files("dashboard-assets", "/dashboard", join(PUBLIC_DIR, "dashboard")),
    files("assets", "/assets", join(PUBLIC_DIR, "assets")),
  ];
}

/** moleculer-web's settings of the platform gateway (port and address aside). */
export function gatewaySettings(onError: (req: IncomingMessage, res: ServerResponse, err: Error) => void) {
  return {
    logRequest: "debug",
    logResponse: "debug",
    log4XXResponses: false,
    httpServerTimeout: 0, // event streams stay open
    rootCallOptions: untrackedStreams,
    routes: gatewayRoutes(onError),
    onError,
  };
}
