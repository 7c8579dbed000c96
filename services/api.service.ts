// Service `api`: the front door (moleculer-web). The REST task-list API (compatible with Polyflow's example
// API), Server-Sent Events of the changes a user may see, the OpenAPI document and Swagger UI, the
// service-discovery dashboard, health, readiness and Prometheus metrics. This is the Moleculer shell; the gateway's
// parts live in gateway/: the routes (platform-routes.ts), the answers (task-list.ts), the event streams
// (event-streams.ts), the dashboard (dashboard.ts), readiness (readiness.ts) and authentication (gateway-security.ts).
// A task or data entry the caller may not see answers exactly as one that does not exist.
import ApiGateway from "moleculer-web";
import type { Context, ServiceSettingSchema } from "moleculer";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { readEnvironment } from "../lib/env.ts";
import { waitingFor } from "../lib/dependency-wait.ts";
import { defineService } from "../lib/schema.ts";
import type { TaskpoolPrometheusReporter } from "../lib/metrics.ts";
import type { User } from "../domain/types.ts";
import { callerOf, errorResponse, sendError, gatedGatewayMethods, gatedRouteError, tooManyStreams, type Caller, type GatedRequest, type RouteAlias } from "../gateway/gateway-security.ts";
import { clusterSnapshot } from "../gateway/dashboard.ts";
import { platformGatewayParts, type PlatformGatewayParts } from "../gateway/platform-gateway.ts";
import type { ChangeBatch, StartRefusal } from "../gateway/event-streams.ts";
import { readiness } from "../gateway/readiness.ts";
import { actionCallOf, type ActionCall } from "../lib/actions.ts";
import * as taskList from "../gateway/task-list.ts";
import { ACTION_PARAMS, gatewaySettings, platformOpenApi, type ApiActionParams, type ApiMeta, type GatewayRequest, type PlatformGateway } from "../gateway/platform-routes.ts";

// The error mapping is the shared one of every gateway, and the Polyflow base path the routes': exported here too
// for the modules that imported them from here.
export { errorResponse };
export { POLYFLOW_BASE_PATH } from "../gateway/platform-routes.ts";

type ApiSettings = ServiceSettingSchema & Partial<ReturnType<typeof gatewaySettings>> & {
  port?: number;
  ip?: string;
  /** The gateway's authentication settings (gateway/gateway-security.ts); default the process's environment. */
  securityEnv?: NodeJS.ProcessEnv;
};

interface Methods extends PlatformGateway {
  authenticate(ctx: Context<unknown, ApiMeta>, route: { opts: { name: string } }, req: GatedRequest): (User & { id?: string }) | null;
  send404(req: IncomingMessage, res: ServerResponse): void;
  errorHandler(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  httpHandler(req: GatedRequest, res: ServerResponse, next?: (err?: unknown) => void): Promise<unknown>;
  sendApiError(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  userOf(ctx: Context<unknown, ApiMeta>): User;
  /** Sets the answer's status and headers on the call's meta; returns its body. */
  answer<B>(ctx: Context<unknown, ApiMeta>, answer: taskList.Answer<B>): B;
}

interface Locals extends PlatformGatewayParts {
  /** moleculer-web's: the routes' aliases and the HTTP server. */
  aliases: RouteAlias[];
  server?: Server;
}

/** The context of an api action: its params as lib/actions.ts maps them (ApiActionParams). */
type ApiContext<A extends keyof ApiActionParams = "profile"> = Context<ApiActionParams[A], ApiMeta>;
const callOf = (ctx: Context): ActionCall => actionCallOf(ctx);

const env = readEnvironment();
const interactionAction = (name: taskList.InteractionName) => ({
  params: ACTION_PARAMS[name],
  handler(this: Methods & Locals, ctx: ApiContext<typeof name>) {
    const user = this.userOf(ctx);
    const what = taskList.interaction(name, user, ctx.params.body);
    return taskList.interact(callOf(ctx), user, ctx.params.params.id!, what, { wait: ctx.params.query?.wait === true, timeoutMs: this.config.waitTimeoutMs }).then((a) => this.answer(ctx, a));
  },
});

const ApiService = defineService<ApiSettings, Methods, Locals>({
  name: "api",
  mixins: [ApiGateway],
  dependencies: [],

  settings: {
    port: env.port,
    ip: env.host,
    ...gatewaySettings(gatedRouteError),
  },

  actions: {
    health() {
      return { status: "UP", node: this.broker.nodeID, uptime: Math.round(process.uptime()) };
    },
    async ready(ctx: ApiContext) {
      const body = await readiness(callOf(ctx), this.config.readyMaxLag, waitingFor());
      return this.answer(ctx, { body, status: body.reasons.length > 0 ? 503 : undefined });
    },
    users(ctx: ApiContext) {
      // The directory is the demo login's list: without the demo header nobody logs in with it, so only operators see it.
      if (!this.auth.settings.headerEnabled) this.auth.assertOperator(ctx.meta, true);
      const body = this.directory.users.map((u) => ({ id: u.id, username: u.username, displayName: u.displayName ?? u.username }));
      return this.answer(ctx, { body, headers: { "X-ElementCount": String(this.directory.users.length) } });
    },
    openapi: () => platformOpenApi(),
    profile(ctx: ApiContext) {
      const { username, groups } = ctx.meta.user!;
      return { username, groups, displayName: this.directory.find(username)?.displayName ?? username };
    },
    async processes(ctx: ApiContext) {
      return this.answer(ctx, await taskList.processes(callOf(ctx), this.userOf(ctx), this.formUrls));
    },
    processStart: {
      params: ACTION_PARAMS.processStart,
      handler(ctx: ApiContext<"processStart">) {
        return taskList.processStart(callOf(ctx), this.userOf(ctx), ctx.params.params.processDefinitionId, ctx.params.params.requestId);
      },
    },
    startProcess: {
      params: ACTION_PARAMS.startProcess,
      async handler(ctx: ApiContext<"startProcess">) {
        return this.answer(ctx, { status: 202, body: await taskList.startProcess(callOf(ctx), this.userOf(ctx), ctx.params.params, ctx.params.body) });
      },
    },
    tasks: {
      params: ACTION_PARAMS.tasks,
      async handler(ctx: ApiContext<"tasks">) {
        const params = taskList.taskQuery(this.userOf(ctx), ctx.params.query);
        return this.answer(ctx, await taskList.listAnswer(callOf(ctx), this.answers, "view.tasksWithDataEntriesForUser", params, taskList.renderTasks(this.formUrls)));
      },
    },
    task: {
      params: ACTION_PARAMS.task,
      handler(ctx: ApiContext<"task">) {
        return taskList.taskWithDataEntries(callOf(ctx), this.userOf(ctx), ctx.params.params.id, this.formUrls);
      },
    },
    claim: interactionAction("claim"),
    unclaim: interactionAction("unclaim"),
    defer: interactionAction("defer"),
    undefer: interactionAction("undefer"),
    complete: interactionAction("complete"),
    dataEntries: {
      params: ACTION_PARAMS.dataEntries,
      async handler(ctx: ApiContext<"dataEntries">) {
        const params = taskList.dataEntryQuery(this.userOf(ctx), ctx.params.query);
        return this.answer(ctx, await taskList.listAnswer(callOf(ctx), this.answers, "view.dataEntriesForUser", params, taskList.renderDataEntries(this.formUrls)));
      },
    },
    dataEntry: {
      params: ACTION_PARAMS.dataEntry,
      handler(ctx: ApiContext<"dataEntry">) {
        return taskList.dataEntry(callOf(ctx), this.userOf(ctx), ctx.params.params, this.formUrls);
      },
    },
    dashboard(ctx: ApiContext) {
      this.auth.assertOperator(ctx.meta);
      return clusterSnapshot(callOf(ctx), ctx.meta.operator === true);
    },
  },

  events: {
    // An engine refused a start a user asked for: tell that user (on every gateway, wherever they are connected).
    "processDefinition.startRefused"(ctx: Context<StartRefusal>) {
      this.events.publishStartRefusal(ctx.params);
    },
    "view.changed"(ctx: Context<ChangeBatch>) {
      // Views in memory each project (and announce) every change: a gateway next to one listens to it alone.
      const local = this.broker.getLocalService("view") as { settings?: { store?: string } } | undefined;
      if (local?.settings?.store === "memory" && ctx.nodeID !== this.broker.nodeID) return;
      this.events.publishChanges(ctx.params);
    },
  },

  methods: {
    /** The caller the gate identified (gateway/gateway-security.ts); the public route lets anonymous callers through. */
    authenticate(ctx, route, req) {
      const caller: Caller | null = callerOf(req, this.auth, route.opts.name === "rest");
      ctx.meta.operator = caller?.operator ?? false;
      (req as GatewayRequest).$caller = caller;
      return caller?.user ?? null;
    },
    ...gatedGatewayMethods,
    sendApiError(req, res, err) {
      sendError(res, err, errorResponse(err).status === 401 ? { "WWW-Authenticate": 'Bearer realm="taskpool"' } : {}, { req, logger: this.logger });
    },
    userOf(ctx) {
      const { username, groups } = ctx.meta.user!;
      return { username, groups };
    },
    answer(ctx, { body, status, headers, type }) {
      if (status !== undefined) ctx.meta.$statusCode = status;
      if (headers) ctx.meta.$responseHeaders = headers;
      if (type) ctx.meta.$responseType = type;
      return body;
    },
    openEventStream(req, res) {
      const lastEventId = req.headers["last-event-id"];
      const resume = { lastEventId: typeof lastEventId === "string" ? lastEventId : undefined, expiresAt: req.$caller?.expiresAt ?? null };
      if (!this.events.open(req, res, req.$ctx.meta.user!, resume)) tooManyStreams(res);
    },
    openDashboardStream(req, res) {
      this.auth.assertOperator(req.$ctx.meta);
      const caller = req.$caller ?? null;
      const limitKey = caller ? `user:${caller.user.username}` : `ip:${req.socket.remoteAddress ?? "unknown"}`;
      if (!this.dashboard.open(req, res, { limitKey, hostDetails: caller?.operator === true, expiresAt: caller?.expiresAt ?? null })) tooManyStreams(res);
    },
    sendMetrics(req, res) {
      this.auth.assertOperator(req.$ctx.meta);
      const reporters = (this.broker.metrics as unknown as { reporter?: object[] }).reporter ?? [];
      const reporter = reporters.find((r): r is TaskpoolPrometheusReporter => typeof (r as TaskpoolPrometheusReporter).render === "function");
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(reporter ? reporter.render({ hostDetails: req.$ctx.meta.operator === true }) : "");
    },
  },

  created() {
    Object.assign(this, platformGatewayParts(this.settings.securityEnv, actionCallOf(this.broker)));
    Object.assign(this.settings, this.config);
  },

  stopped() {
    // End the event streams, so that the HTTP server can close; browsers reconnect to another gateway.
    this.events.endAll();
    this.dashboard.endAll();
  },

  started() {
    const address = this.server?.address();
    if (address && typeof address === "object") {
      this.logger.info(`Taskpool API ${this.auth.describe()}`);
      this.logger.info(`Taskpool API listening on http://${address.address === "0.0.0.0" || address.address === "::" ? "localhost" : address.address}:${address.port} (task list /, REST /api, Swagger UI /swagger-ui/, dashboard /dashboard/)`);
    }
    this.broker.localBus.on("$node.**", () => this.dashboard.changed());
    // The form URL templates the process applications of the cluster announce (their services' metadata.formUrls).
    const announce = () => this.formUrls.announce(this.broker.registry.getServiceList({ onlyAvailable: true })) && this.answers.clear();
    this.broker.localBus.on("$services.changed", announce);
    announce();
  },
});

export default ApiService;
