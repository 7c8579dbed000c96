// Service `approval`: the example process application "Request Approval" (application
// `example-process-approval`, process `process_approve_request`; polyflow.md §5) — its Moleculer shell. The
// application lives wholly in this folder: its settings (settings.ts, from lib/env.ts), its HTTP routes, forms and
// OpenAPI document (gateway.ts), the request lifecycle on its own BPMN engine with the process's external tasks
// (workflow.ts), its requests (requests.ts), its process (process.ts), its migrations (migrations/) and its engine
// connector (connector.ts). A node loads it by name (`SERVICES=approval,approvalConnector`, services/index.ts) or
// by path (`SERVICES=apps/approval/approval.service.ts`), like any process application. It shares with the platform
// the public actions (`dataEntry.*`) and the authentication (gateway/gateway-security.ts, configured by the same
// variables); what else it may import is in docs/architecture.md ("Process applications").
import ApiGateway from "moleculer-web";
import type { Context, ServiceSettingSchema } from "moleculer";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { environmentVariables, readEnvironment } from "../../lib/env.ts";
import { Directory } from "../../lib/directory.ts";
import { defineService } from "../../lib/schema.ts";
import { actionCallOf } from "../../lib/actions.ts";
import { Authenticator, callerOf, errorResponse, Gate, sendError, gatedGatewayMethods, gatedRouteError, gatewaySecurityFromEnv, type GatedRequest, type RouteAlias } from "../../gateway/gateway-security.ts";
import type { ProcessEngine } from "../../engine/connector/process-engine.ts";
import type { User } from "../../domain/types.ts";
import type { AmendAction, Decision } from "./process.ts";
import type { ApprovalRequestDraft } from "./requests.ts";
import { approvalSettingsOf, type ApprovalSettings } from "./settings.ts";
import { ACTION_PARAMS, approvalFormUrls, approvalGatewaySettings, approvalOpenApi } from "./gateway.ts";
import { ApprovalWorkflow } from "./workflow.ts";

export { createApprovalConnector, type ApprovalConnectorOptions } from "./connector.ts";
export type { ApprovalSettings } from "./settings.ts";

/** The application's settings from the environment (APP_PORT, ENGINE_URL, DATABASE_URL, DATA_DIR, TASKLIST_URL, …). */
export function approvalSettingsFromEnv(env?: NodeJS.ProcessEnv): ApprovalSettings {
  return approvalSettingsOf(readEnvironment(env), environmentVariables(env));
}

export interface ApprovalServiceOptions {
  /** Overrides of the settings read from the environment. */
  settings?: Partial<ApprovalSettings>;
  env?: NodeJS.ProcessEnv;
  /** An engine to use instead of the one the settings describe (tests, benchmarks). */
  engine?: ProcessEngine;
}

interface Meta {
  user?: User & { id?: string };
  $statusCode?: number;
  $location?: string;
}
type ApiContext<P = object> = Context<{ params: Record<string, string>; query: Record<string, unknown>; body: unknown } & P, Meta>;
/** Moleculer may override them (a mixin, createService); the application runs on the ones built here. */
type Settings = ServiceSettingSchema & Partial<ApprovalSettings> & { ip?: string };

interface Methods {
  authenticate(ctx: Context, route: unknown, req: GatedRequest): User & { id?: string };
  send404(req: IncomingMessage, res: ServerResponse): void;
  errorHandler(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  httpHandler(req: GatedRequest, res: ServerResponse, next?: (err?: unknown) => void): Promise<unknown>;
  sendApiError(req: IncomingMessage, res: ServerResponse, err: unknown): void;
  userOf(ctx: ApiContext): User;
}

interface Locals {
  directory: Directory;
  auth: Authenticator;
  gate: Gate;
  workflow: ApprovalWorkflow;
  /** Resolved once started() has run (successfully or not): requests wait for it. */
  startedOnce: Promise<void>;
  markStarted: () => void;
  /** moleculer-web's: the routes' aliases and the HTTP server. */
  aliases: RouteAlias[];
  server?: Server;
}


export function createApprovalService(options: ApprovalServiceOptions = {}) {
  const settings: ApprovalSettings = { ...approvalSettingsFromEnv(options.env), ...options.settings };
  // The platform's authentication, configured by the same variables (gateway/gateway-security.ts).
  const security = gatewaySecurityFromEnv(environmentVariables(options.env));

  return defineService<Settings, Methods, Locals>({
    name: "approval",
    mixins: [ApiGateway],
    // The platform's task list links to the forms with these templates (gateway/tasklist-dto.ts; FORM_URLS wins).
    metadata: { formUrls: { [settings.applicationName]: approvalFormUrls(settings.port) } },

    settings: { $secureSettings: ["enginePassword"], ...settings, ip: settings.host, ...approvalGatewaySettings(gatedRouteError) },

    hooks: {
      before: {
        // The HTTP server listens before started() has opened the database and the engine: hold requests until then.
        async "*"() {
          await this.startedOnce;
        },
      },
    },

    actions: {
      environment() {
        return {
          applicationName: settings.applicationName,
          tasklistUrl: settings.tasklistUrl,
          users: this.directory.users.map((u) => ({ id: u.id, username: u.username, displayName: u.displayName ?? u.username })),
        };
      },
      openapi() {
        return approvalOpenApi(settings.applicationName);
      },
      /** The application's state: engine, deployment, external tasks. Not routed; for tests and operators. */
      status: {
        visibility: "public",
        async handler() {
          const address = this.server?.address();
          const { engine, engineReady, engineError, processDefinitionId, externalTasks } = await this.workflow.status();
          return { applicationName: settings.applicationName, engine, engineReady, engineError, processDefinitionId, port: address && typeof address === "object" ? address.port : null, externalTasks };
        },
      },
      startRequest: {
        params: ACTION_PARAMS.startRequest,
        async handler(ctx: ApiContext<{ body: ApprovalRequestDraft }>) {
          const request = await this.workflow.startRequest(this.userOf(ctx), ctx.params.body);
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/request/${encodeURIComponent(request.id)}`;
          return request;
        },
      },
      listRequests(ctx: ApiContext) {
        return this.workflow.listRequests(this.userOf(ctx));
      },
      getRequest: {
        params: ACTION_PARAMS.getRequest,
        handler(ctx: ApiContext) {
          return this.workflow.getRequest(this.userOf(ctx), ctx.params.params.id!);
        },
      },
      approveForm: {
        params: ACTION_PARAMS.approveForm,
        handler(ctx: ApiContext) {
          return this.workflow.approveForm(this.userOf(ctx), ctx.params.params.id!);
        },
      },
      approveSubmit: {
        params: ACTION_PARAMS.approveSubmit,
        async handler(ctx: ApiContext<{ body: { decision: Decision; comment?: string | null } }>) {
          await this.workflow.approve(this.userOf(ctx), ctx.params.params.id!, ctx.params.body.decision, ctx.params.body.comment);
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
      amendForm: {
        params: ACTION_PARAMS.amendForm,
        handler(ctx: ApiContext) {
          return this.workflow.amendForm(this.userOf(ctx), ctx.params.params.id!);
        },
      },
      amendSubmit: {
        params: ACTION_PARAMS.amendSubmit,
        async handler(ctx: ApiContext<{ body: { action: AmendAction; approvalRequest?: ApprovalRequestDraft; comment?: string | null } }>) {
          const { action, approvalRequest, comment } = ctx.params.body;
          await this.workflow.amend(this.userOf(ctx), ctx.params.params.id!, action, approvalRequest, comment);
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
    },

    methods: {
      /** The caller the gate identified: the platform's modes (JWT, and the header where enabled). */
      authenticate(_ctx, _route, req) {
        return callerOf(req, this.auth, true)!.user;
      },
      ...gatedGatewayMethods,
      userOf(ctx) {
        const { username, groups } = ctx.meta.user!;
        return { username, groups };
      },
      sendApiError(req, res, err) {
        const challenge = `${this.auth.settings.jwt ? "Bearer" : "Header"} realm="example-process-approval"`;
        sendError(res, err, errorResponse(err).status === 401 ? { "WWW-Authenticate": challenge } : {}, { req, logger: this.logger });
      },
    },

    created() {
      this.directory = Directory.load();
      this.auth = new Authenticator(security, this.directory);
      this.gate = new Gate(this.auth, { streamPaths: [] });
      this.workflow = new ApprovalWorkflow({ settings, logger: this.logger, call: actionCallOf(this.broker), engine: options.engine });
      this.startedOnce = new Promise<void>((resolve) => (this.markStarted = resolve));
    },

    async started() {
      try {
        await this.workflow.start();
        const address = this.server?.address();
        if (address && typeof address === "object") {
          this.logger.info(`Request Approval ${this.auth.describe()}`);
          this.logger.info(`Request Approval listening on http://localhost:${address.port} (forms /forms/, REST /api, Swagger UI /swagger-ui/)`);
        }
      } finally {
        this.markStarted();
      }
    },

    async stopped() {
      await this.workflow.stop();
    },
  });
}

export default createApprovalService();
