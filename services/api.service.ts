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
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import serveStatic from "serve-static";
import { readEnvironment } from "../lib/env.ts";
import { forbidden, notFound } from "../lib/errors.ts";
import { waitingFor } from "../lib/dependency-wait.ts";
import {
  Authenticator,
  callerOf,
  checkInput,
  errorResponse,
  sendError,
  sendUnrouted,
  Gate,
  gatewaySecurityFromEnv,
  sendHtml,
  StreamLimiter,
  tooManyStreams,
  type Caller,
  type GatedRequest,
} from "../gateway/gateway-security.ts";
import { Directory } from "../lib/directory.ts";
import { openApiDocument } from "../gateway/openapi.ts";
import { aliasesOf, openApiRoutesOf, type TableRoute } from "../gateway/route-table.ts";
import { dataEntryDto, FormUrls, processDto, taskDto, viewSort } from "../gateway/tasklist-dto.ts";
import { isoDate } from "../lib/params.ts";
import { AnswerCache } from "../gateway/answer-cache.ts";
import { compareTokens } from "../lib/tokens.ts";
import type { TaskpoolPrometheusReporter } from "../lib/metrics.ts";
import type { User } from "../domain/types.ts";
import type { ViewChange } from "./view.service.ts";

const require = createRequire(import.meta.url);
const swaggerUiDir = dirname(require.resolve("swagger-ui-dist/package.json"));
const publicDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "public");

interface Meta {
  user?: User & { id?: string };
  /** Set by the gateway's authentication: the caller belongs to the operator group. */
  operator?: boolean;
  $statusCode?: number;
  $responseHeaders?: Record<string, string>;
  $responseType?: string;
}
type ApiContext<P = Record<string, any>> = Context<{ params: Record<string, string>; query: Record<string, any>; body: any } & P, Meta>;

// The error mapping is the shared one of every gateway; exported here too for the modules that imported it.
export { errorResponse };


// ---- params ---------------------------------------------------------------------------------------------------

// The filter and sort grammar of docs/filters.md, as the OpenAPI document states it (so generated examples are
// meaningful); domain/view/filters.ts remains the full check (known fields, typed values).
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
const arrayOf = (value: unknown) => (value === undefined ? undefined : Array.isArray(value) ? value : [value]);

const env = readEnvironment();

/** Where Polyflow's example task list (and its OpenAPI contract) expects the REST API. */
export const POLYFLOW_BASE_PATH = "/polyflow-platform/rest";
/** The live event stream under both base paths (browsers' EventSource sends no headers: see authenticate). */
const EVENT_STREAM_PATHS = new Set(["/api/events", `${POLYFLOW_BASE_PATH}/events`]);
/** Streams whose credentials may come in the query string (gateway/gateway-security.ts: EventSource sends no headers). */
const STREAM_PATHS = [...EVENT_STREAM_PATHS, "/api/dashboard/events"];

// ---- the routes: one table per route of the gateway, serving and documenting them (gateway/route-table.ts) ----

const list = { type: "array", items: { type: "object" } };
const count = { "X-ElementCount": { description: "Total number of matching elements", schema: { type: "integer" } } };
const notVisible = { description: "Not found (or not visible to the caller)" };

/** Routes open to anonymous callers (an operator's credentials open the operator endpoints). */
const PUBLIC_ROUTES: TableRoute[] = [
  { method: "GET", path: "/api/health", action: "api.health", doc: { tag: "operations", summary: "The gateway is alive", authenticated: false, responses: { 200: { description: "Alive" } } } },
  { method: "GET", path: "/api/ready", action: "api.ready", doc: { tag: "operations", summary: "Event store reachable and view caught up", authenticated: false, responses: { 200: { description: "Ready" }, 503: { description: "Not ready; reasons given" } } } },
  { method: "GET", path: "/api/users", action: "api.users", doc: { tag: "users", summary: "The users of the directory (for the demo login)", authenticated: false, responses: { 200: { description: "Users", schema: list } } } },
  // Polyflow's contract has the user list without authentication too (its login helper).
  { method: "GET", path: `${POLYFLOW_BASE_PATH}/users`, action: "api.users" },
  { method: "GET", path: "/api/openapi.json", action: "api.openapi" },
  { method: "GET", path: "/api/dashboard", action: "api.dashboard", doc: { tag: "operations", summary: "Snapshot of the cluster for the dashboard", authenticated: false, responses: { 200: { description: "Nodes, services, events, processors" } } } },
  {
    method: "GET",
    path: "/api/dashboard/events",
    handler(req: GatedRequest & { $ctx: Context<unknown, Meta> }, res: ServerResponse) {
      this.assertOperator(req.$ctx.meta);
      this.openDashboardStream(req, res);
    },
  },
  {
    method: "GET",
    path: "/metrics",
    handler(req: GatedRequest & { $ctx: Context<unknown, Meta> }, res: ServerResponse) {
      this.assertOperator(req.$ctx.meta);
      const reporter = (this.broker.metrics.reporter ?? []).find((r: object) => typeof (r as TaskpoolPrometheusReporter).render === "function");
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(reporter ? reporter.render({ hostDetails: req.$ctx.meta.operator === true }) : "");
    },
  },
  { method: "GET", path: "/", handler: (_req, res) => sendHtml(res, join(publicDir, "index.html")) },
  { method: "GET", path: "/dashboard/", handler: (_req, res) => sendHtml(res, join(publicDir, "dashboard", "index.html")) },
  { method: "GET", path: "/swagger-ui/", handler: (_req, res) => sendHtml(res, join(publicDir, "swagger-ui", "index.html")) },
];

const interactions = { claim: "Claim the task", unclaim: "Give the task back", defer: "Defer to a follow-up date", undefer: "Clear the follow-up date", complete: "Complete with a payload" };

/** The REST API of the task list (Polyflow's example task-list API), for authenticated callers. */
const REST_ROUTES: TableRoute[] = [
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
  ...Object.entries(interactions).map(
    ([name, summary]): TableRoute => ({
      method: "POST",
      path: `/api/task/:id/${name}`,
      action: `api.${name}`,
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
    handler(req: IncomingMessage & { $ctx: Context<unknown, Meta> }, res: ServerResponse) {
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

const ApiService: ServiceSchema<any> = {
  name: "api",
  mixins: [ApiGateway],
  dependencies: [],

  settings: {
    port: env.port,
    ip: env.host,
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
        // Optional: an operator's credentials open the operator endpoints; anonymous callers get the rest.
        authentication: true,
        bodyParsers: false,
        onBeforeCall(this: any, _ctx: Context, _route: unknown, req: GatedRequest & { query?: unknown }) {
          checkInput({ query: req.query });
        },
        aliases: aliasesOf(PUBLIC_ROUTES),
        onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
          this.sendApiError(req, res, err);
        },
      },
      {
        name: "rest",
        path: "/",
        mappingPolicy: "restrict",
        authentication: true,
        mergeParams: false,
        bodyParsers: { json: { strict: false, limit: "1mb" } },
        // Rate limiting is the gate's (gateway/gateway-security.ts): it runs before the body is parsed.
        onBeforeCall(this: any, _ctx: Context, _route: unknown, req: GatedRequest & { $params?: { body?: unknown; query?: unknown; params?: unknown } }) {
          checkInput(req.$params);
        },
        // Every route also under Polyflow's base path: one route, not a copy — the same authentication, body parsers
        // and rate limit (one count for both paths); the route therefore sits at the root, with full paths.
        aliases: aliasesOf(REST_ROUTES, (path) => [path, path.replace(/^\/api/, POLYFLOW_BASE_PATH)]),
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
        // What this node's own starts still wait for (a database, MongoDB) comes first: it explains what follows.
        const reasons: string[] = waitingFor();
        let head: { globalPosition: number; token: string } | null = null;
        try {
          // No retries: a probe asked while the node is still starting answers 503 at once, not after the retry
          // policy's back-off (which held the first 200 back by up to two seconds after the start).
          head = await ctx.call("eventstore.head", {}, { timeout: 3000, retries: 0 });
        } catch (err) {
          reasons.push(`event store unreachable: ${(err as Error).message}`);
        }
        let view: { token: string; globalPosition: number } | null = null;
        try {
          view = await ctx.call("view.position", {}, { timeout: 3000, retries: 0 });
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
        // The directory is the demo login's list: without the demo header nobody logs in with it, so only operators see it.
        if (!this.auth.settings.headerEnabled) this.assertOperator(ctx.meta, true);
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
        const user = this.userOf(ctx);
        const params = {
          user,
          page: q.page,
          size: q.size,
          sort: viewSort(arrayOf(q.sort), "task"),
          filters: arrayOf(q.filters),
          assignedToMeOnly: q.assignedToMeOnly ?? false,
          involvementsOnly: q.involvementsOnly ?? false,
        };
        return this.listAnswer(ctx, "view.tasksWithDataEntriesForUser", params, (elements: { task: Record<string, unknown>; dataEntries: Record<string, unknown>[] }[]) =>
          elements.map((e) => ({ task: taskDto(e.task, this.formUrls), dataEntries: e.dataEntries.map((d) => dataEntryDto(d, this.formUrls)) })),
        );
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
        return this.interact(ctx, "task.unclaim", { username: this.userOf(ctx).username }, (task: Record<string, unknown> | null) => task !== null && task.assignee === null);
      },
    },
    defer: {
      params: { params: taskId, query: waitQuery, body: { ...isoDate({ optional: false }), description: "The follow-up date, an ISO-8601 date-time string" } },
      async handler(this: any, ctx: ApiContext) {
        const followUpDate = ctx.params.body as string;
        return this.interact(ctx, "task.defer", { followUpDate, username: this.userOf(ctx).username }, (task: Record<string, unknown> | null) => task?.followUpDate === followUpDate);
      },
    },
    undefer: {
      params: { params: taskId, query: waitQuery, body: noBody },
      async handler(this: any, ctx: ApiContext) {
        return this.interact(ctx, "task.undefer", { username: this.userOf(ctx).username }, (task: Record<string, unknown> | null) => task !== null && task.followUpDate === null);
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
        const params = {
          user: this.userOf(ctx),
          page: q.page,
          size: q.size,
          sort: viewSort(arrayOf(q.sort), "dataEntry"),
          filters: arrayOf(q.filters),
          involvementsOnly: q.involvementsOnly ?? false,
        };
        return this.listAnswer(ctx, "view.dataEntriesForUser", params, (elements: Record<string, unknown>[]) => elements.map((d) => dataEntryDto(d, this.formUrls)));
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
        this.assertOperator(ctx.meta);
        return this.clusterSnapshot(ctx, ctx.meta.operator === true);
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

    /** The caller the gate identified (gateway/gateway-security.ts); the public route lets anonymous callers through. */
    authenticate(this: any, ctx: Context<unknown, Meta>, route: { opts: { name: string } }, req: GatedRequest): (User & { id?: string }) | null {
      const caller: Caller | null = callerOf(req, this.auth, route.opts.name === "rest");
      ctx.meta.operator = caller?.operator ?? false;
      (req as GatedRequest & { $caller?: Caller | null }).$caller = caller;
      return caller?.user ?? null;
    },

    /** Operator endpoints: with authentication configured (a JWT key), only members of the operator group. */
    assertOperator(this: any, meta: Meta, always = false) {
      if (!always && !this.auth.operatorsRequired) return;
      if (meta.operator) return;
      if (!meta.user) throw this.auth.missingCredentials();
      throw forbidden(`Only members of the operator group may use this`);
    },

    /** No route took the request: 405 if the path exists for another method, else 404. */
    send404(this: any, req: IncomingMessage, res: ServerResponse) {
      sendUnrouted(this.aliases, req, res);
    },

    /** moleculer-web's last-resort error handler: the same typed answer, and no stack in the log (issue 13). */
    errorHandler(this: any, req: IncomingMessage, res: ServerResponse, err: unknown) {
      this.sendApiError(req, res, err);
    },

    /** moleculer-web's request handler behind the gate: a refused request never reaches routing or parsing. */
    async httpHandler(this: any, req: GatedRequest, res: ServerResponse, next?: (err?: unknown) => void) {
      try {
        if (!(await this.gate.admit(req, res))) return;
      } catch (err) {
        this.sendApiError(req, res, err);
        return;
      }
      return (ApiGateway.methods as { httpHandler: (...args: unknown[]) => unknown }).httpHandler.call(this, req, res, next);
    },

    userOf(ctx: ApiContext): User {
      const { username, groups } = ctx.meta.user!;
      return { username, groups };
    },

    /**
     * A list answer (a page of a view query and its total): kept per question (the view action and its parameters,
     * the caller included) with the view version it was computed from, and sent again as it was while the view
     * has not moved on — the view only confirms the version (gateway/answer-cache.ts). The body is serialised once.
     */
    async listAnswer<E>(this: any, ctx: ApiContext, action: string, params: Record<string, unknown>, render: (elements: E[]) => unknown[]): Promise<string | unknown[]> {
      const answers: AnswerCache = this.answers;
      if (!answers.enabled) {
        const result = (await ctx.call(action, params)) as { elements: E[]; totalElementCount: number };
        ctx.meta.$responseHeaders = { "X-ElementCount": String(result.totalElementCount) };
        return render(result.elements);
      }
      const key = JSON.stringify([action, params]);
      const kept = answers.get(key);
      const result = (await ctx.call(action, { ...params, knownVersion: kept?.version ?? "" })) as
        | { unchanged: true; version: string }
        | { unchanged?: undefined; elements: E[]; totalElementCount: number; version: string };
      let answer = kept;
      if (!result.unchanged || !answer) {
        if (result.unchanged) throw new Error(`${action} answered "unchanged" to a version it was not given`);
        answer = { version: result.version, total: result.totalElementCount, body: JSON.stringify(render(result.elements)) };
        answers.set(key, answer);
      }
      ctx.meta.$responseHeaders = { "X-ElementCount": String(answer.total) };
      ctx.meta.$responseType = "application/json; charset=utf-8";
      return answer.body;
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

    sendApiError(this: any, req: IncomingMessage, res: ServerResponse, err: unknown) {
      sendError(res, err, errorResponse(err).status === 401 ? { "WWW-Authenticate": 'Bearer realm="taskpool"' } : {}, { req, logger: this.logger });
    },


    // ---- OpenAPI ----

    openApi(this: any) {
      if (this.openApiCache) return this.openApiCache;
      const routes = openApiRoutesOf([...PUBLIC_ROUTES, ...REST_ROUTES], (action) => this.schema.actions[action.replace(/^api\./, "")]?.params);
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

    openEventStream(this: any, req: GatedRequest & { $ctx: Context<unknown, Meta>; $caller?: Caller | null }, res: ServerResponse) {
      const user = req.$ctx.meta.user!;
      const release = this.streamLimiter.open(`user:${user.username}`);
      if (!release) return tooManyStreams(res);
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
      // A stream lives no longer than the token that opened it: the client reconnects with a fresh one.
      const expiresAt = req.$caller?.expiresAt ?? null;
      const expiry = expiresAt === null ? null : setTimeout(() => {
        res.write("event: token-expired\ndata: {}\n\n");
        res.end();
      }, Math.max(0, Math.min(expiresAt - Date.now(), 2_147_483_647)));
      this.openResponses.add(res);
      const close = () => {
        clearInterval(keepAlive);
        if (expiry) clearTimeout(expiry);
        release();
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

    /** The cluster as the dashboard shows it; host names and addresses only for operators. */
    async clusterSnapshot(this: any, ctx: Context, hostDetails: boolean) {
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
          hostname: hostDetails ? node.hostname : null,
          ipList: hostDetails ? node.ipList : [],
          client: hostDetails ? node.client : null,
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

    openDashboardStream(this: any, req: GatedRequest & { $ctx: Context<unknown, Meta>; $caller?: Caller | null }, res: ServerResponse) {
      const caller = req.$caller ?? null;
      const release = this.streamLimiter.open(caller ? `user:${caller.user.username}` : `ip:${req.socket.remoteAddress ?? "unknown"}`);
      if (!release) return tooManyStreams(res);
      const hostDetails = caller?.operator === true;
      res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", Connection: "keep-alive", "X-Accel-Buffering": "no" });
      res.write("retry: 3000\n\n");
      let busy = false;
      const push = async () => {
        if (busy) return;
        busy = true;
        try {
          const snapshot = await this.clusterSnapshot(this.broker.ContextFactory.create(this.broker, null, {}, {}), hostDetails);
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
      const expiry = caller?.expiresAt == null ? null : setTimeout(() => res.end(), Math.max(0, Math.min(caller.expiresAt - Date.now(), 2_147_483_647)));
      req.on("close", () => {
        clearInterval(timer);
        if (expiry) clearTimeout(expiry);
        release();
        this.dashboardListeners.delete(onChange);
        this.openResponses.delete(res);
      });
    },
  },

  created(this: any) {
    const configured = readEnvironment();
    this.directory = Directory.load();
    this.formUrls = FormUrls.fromEnvironment(configured.formUrls ?? undefined, String(configured.appPort), configured.publicUrl);
    this.answers = new AnswerCache(configured.api.answerCacheBytes);
    this.sseStreams = new Set();
    this.openResponses = new Set();
    this.sseHistory = [];
    this.dashboardListeners = new Set();
    // One authentication for every gateway (gateway/gateway-security.ts); tests pass their own environment.
    const security = gatewaySecurityFromEnv(this.settings.securityEnv ?? process.env);
    this.auth = new Authenticator(security, this.directory);
    this.gate = new Gate(this.auth, { streamPaths: STREAM_PATHS });
    this.streamLimiter = new StreamLimiter(security);
    Object.assign(this.settings, configured.api);
  },


  stopped(this: any) {
    // End the event streams, so that the HTTP server can close; browsers reconnect to another gateway.
    for (const res of this.openResponses) res.end();
    this.openResponses.clear();
  },

  started(this: any) {
    const address = this.server?.address();
    if (address && typeof address === "object") {
      this.logger.info(`Taskpool API ${this.auth.describe()}`);
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

export default ApiService;
