// Service `approval`: the example process application "Request Approval" (application
// `example-process-approval`, process `process_approve_request`; polyflow.md §5). It owns
// - its BPMN engine: Operaton / Camunda 7 over REST when ENGINE_URL is set, otherwise the embedded engine;
//   registered in this process (engine/connector/process-engine.ts) so that an engine connector on the same node
//   uses the very same engine; the BPMN is deployed at start (unchanged: nothing new);
// - the process's service tasks (external tasks): loading the request into the process, and the audit points
//   that move the request's status and its data entry in the data pool (state, protocol, authorizations);
// - its business data (the requests, apps/approval/requests.ts) in PostgreSQL or PGlite;
// - its own REST API on APP_PORT (8080) under /api, as the original example's: start a request, read requests,
//   the approve and amend task forms' data and submits; the users of the directory through X-Current-User-ID;
//   Swagger UI at /swagger-ui/ from the actions' params; the plain-HTML forms at /forms/ (the platform's form
//   URLs point there).
//
// `createApprovalConnector()` is the engine connector for this application, with the application's enrichment,
// on Operaton (ENGINE_URL) or on the engine registered here (embedded).
import ApiGateway from "moleculer-web";
import { Errors, type Context, type ServiceSchema } from "moleculer";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { embeddedDatabaseDirectory } from "../stores/database.ts";
import { fileURLToPath } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import serveStatic from "serve-static";
import { readEnvironment } from "../lib/env.ts";
import { Directory, type DirectoryUser } from "../lib/directory.ts";
import { conflict, forbidden, notFound, unavailable, validationError } from "../lib/errors.ts";
import { openApiDocument, type OpenApiRoute } from "../gateway/openapi.ts";
import { Authenticator, callerOf, checkInput, errorResponse, Gate, sendError, sendUnrouted, gatewaySecurityFromEnv, sendHtml, type GatedRequest } from "../gateway/gateway-security.ts";
import { createEngineConnector, engineConnectorSettingsFromEnv, type EngineConnectorOptions, type EngineConnectorServiceSettings } from "./engine-connector.service.ts";
import { isEngineError, type EngineTask, type EngineTaskWithDetails } from "../engine/connector/engine-adapter.ts";
import { registerEngine, unregisterEngine, type ProcessEngine } from "../engine/connector/process-engine.ts";
import type { OperatonEngine } from "../engine/operaton/operaton-engine.ts";
import type { EmbeddedEngineOptions } from "../engine/embedded/engine.ts";
import type { ExternalTaskInput } from "../engine/connector/external-tasks.ts";
import { plainValues } from "../domain/engine/variables.ts";
import type { JsonObject, User } from "../domain/types.ts";
import {
  AMEND_ACTIONS,
  APPLICATION_NAME,
  APPROVERS,
  AUDIT_POINTS,
  DECISIONS,
  FORMS_DIR,
  PROCESS_KEY,
  TASKS,
  TOPICS,
  VARIABLES,
  approvalBpmn,
  approvalEnrichment,
  isAuditState,
  starters,
  type AmendAction,
  type Decision,
} from "../apps/approval/process.ts";
import { RequestStore, requestDataEntry, type ApprovalRequest, type ApprovalRequestDraft, type RequestLogEntry } from "../apps/approval/requests.ts";

const require = createRequire(import.meta.url);
const swaggerUiDir = dirname(require.resolve("swagger-ui-dist/package.json"));
const swaggerIndex = join(dirname(fileURLToPath(import.meta.url)), "..", "apps", "approval", "swagger-ui.html");
/** The platform pages' shared module (public/assets/page.js), served to the forms as /forms/shared/. */
const SHARED_ASSETS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "public", "assets");

// Settings -----------------------------------------------------------------------------------------------------------

export interface ApprovalSettings {
  applicationName: string;
  /** HTTP port of the application's API and forms (APP_PORT); 0 picks a free one. */
  port: number;
  host: string;
  /** Operaton / Camunda 7 REST base (ENGINE_URL); null runs the embedded engine. */
  engineUrl: string | null;
  engineUsername: string | null;
  enginePassword: string | null;
  /** The requests' database: postgres://… ; null uses PGlite in `pgliteDir`. */
  databaseUrl: string | null;
  /** PGlite directory of the requests; "memory" keeps them in memory (tests). */
  pgliteDir: string;
  /** PostgreSQL schema of the application's tables (default "approval"). */
  schema?: string;
  /** Settings of the embedded engine (its own PGlite directory by default). */
  embeddedEngine: Omit<EmbeddedEngineOptions, "logger">;
  /** Where users find their task list (GET /api/environment). */
  tasklistUrl: string;
  /** The approve task is due this long after the request was (re)loaded, ms. */
  approvalDueInMs: number;
  /** Attempts of a failing service task before the engine raises an incident. */
  externalTaskRetries: number;
  /** Long polling of the external-task worker (Operaton), ms. */
  externalTaskLongPollMs: number;
}

function text(raw: string | undefined): string | null {
  return raw === undefined || raw.trim() === "" ? null : raw.trim();
}

/** The application's settings from the environment (APP_PORT, ENGINE_URL, DATABASE_URL, DATA_DIR, TASKLIST_URL, …). */
export function approvalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ApprovalSettings {
  const platform = readEnvironment(env);
  const username = text(env.ENGINE_USERNAME);
  return {
    applicationName: APPLICATION_NAME,
    port: platform.appPort,
    host: text(env.HOST) ?? "0.0.0.0",
    engineUrl: text(env.ENGINE_URL),
    engineUsername: username,
    enginePassword: username ? (env.ENGINE_PASSWORD ?? "") : null,
    databaseUrl: platform.databaseUrl,
    pgliteDir: embeddedDatabaseDirectory(platform.dataDir),
    embeddedEngine: {
      applicationName: APPLICATION_NAME,
      databaseUrl: platform.databaseUrl,
      pgliteDir: embeddedDatabaseDirectory(platform.dataDir),
    },
    tasklistUrl: text(env.TASKLIST_URL) ?? `http://localhost:${platform.port}/`,
    approvalDueInMs: 3 * 24 * 3600_000,
    externalTaskRetries: 5,
    externalTaskLongPollMs: 10_000,
  };
}

// Engine errors as the API's errors ------------------------------------------------------------------------------------

function apiErrorOf(err: unknown, what: string): unknown {
  if (!isEngineError(err)) return err;
  switch (err.kind) {
    case "conflict":
      return conflict(`${what}: ${err.reason}`);
    case "gone":
      return notFound(`${what}: ${err.reason}`);
    case "invalid":
      return new Errors.MoleculerClientError(`${what}: the engine refused it: ${err.reason}`, 400, "ENGINE_REFUSED");
    default:
      return unavailable(`${what}: the engine is not available: ${err.reason}`);
  }
}

// Params ---------------------------------------------------------------------------------------------------------------

const userName = { type: "string", min: 1, max: 300, trim: true };
const draftProps = {
  subject: { type: "string", min: 1, max: 300, trim: true, description: "What is requested" },
  applicant: { ...userName, description: "For whom (a user name)" },
  amount: { type: "number", positive: true, max: 1e12, description: "Amount, at most two decimals are kept" },
  currency: { type: "string", uppercase: true, trim: true, pattern: /^[A-Z]{3}$/, description: "ISO 4217 code, e.g. EUR" },
};
const draft = { type: "object", strict: "remove", props: draftProps };
const byId = { type: "object", props: { id: { type: "string", min: 1, max: 300 } } };
const comment = { type: "string", max: 10_000, optional: true, nullable: true, description: "Comment for the originator / the approvers" };

interface Meta {
  user?: User & { id?: string };
  $statusCode?: number;
  $responseHeaders?: Record<string, string>;
  $location?: string;
}
type ApiContext<P = Record<string, any>> = Context<{ params: Record<string, string>; query: Record<string, any>; body: any } & P, Meta>;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** The task as the forms see it. */
function taskDto(task: EngineTask | EngineTaskWithDetails, request: ApprovalRequest) {
  return {
    id: task.id,
    name: task.name,
    description: task.description,
    formKey: task.formKey,
    taskDefinitionKey: task.taskDefinitionKey,
    assignee: task.assignee,
    candidateUsers: "candidateUsers" in task ? (task.candidateUsers ?? []) : [],
    candidateGroups: "candidateGroups" in task ? (task.candidateGroups ?? []) : [],
    createTime: task.createTime,
    dueDate: task.dueDate,
    followUpDate: task.followUpDate,
    priority: task.priority,
    processInstanceId: task.processInstanceId,
    businessKey: request.id,
  };
}

/** Who may see a request: who submitted it or applies, the approvers, and whoever acted on it. */
function maySeeRequest(user: User, request: ApprovalRequest, history: RequestLogEntry[]): boolean {
  if (request.originator === user.username || request.applicant === user.username) return true;
  if ((APPROVERS.users as readonly string[]).includes(user.username)) return true;
  if (user.groups.some((g) => (APPROVERS.groups as readonly string[]).includes(g))) return true;
  return history.some((entry) => entry.username === user.username);
}

function mayWorkOn(user: User, task: EngineTaskWithDetails): boolean {
  return task.assignee === user.username || task.candidateUsers.includes(user.username) || task.candidateGroups.some((g) => user.groups.includes(g));
}

// The engine of the application ------------------------------------------------------------------------------------------

/** The embedded engine, loaded only when used (it brings bpmn-engine and its moddle along). */
async function createEmbeddedEngine(options: EmbeddedEngineOptions): Promise<ProcessEngine> {
  const { EmbeddedEngine } = await import("../engine/embedded/engine.ts");
  return new EmbeddedEngine(options);
}

// The service ----------------------------------------------------------------------------------------------------------

export interface ApprovalServiceOptions {
  /** Overrides of the settings read from the environment. */
  settings?: Partial<ApprovalSettings>;
  env?: NodeJS.ProcessEnv;
  /** An engine to use instead of the one the settings describe (tests, benchmarks). */
  engine?: ProcessEngine;
}

export function createApprovalService(options: ApprovalServiceOptions = {}): ServiceSchema<any> {
  const settings: ApprovalSettings = { ...approvalSettingsFromEnv(options.env ?? process.env), ...options.settings };
  // The platform's authentication, configured by the same variables (gateway/gateway-security.ts).
  const security = gatewaySecurityFromEnv(options.env ?? process.env);
  const checkParams = (_ctx: Context, _route: unknown, req: GatedRequest & { query?: unknown; $params?: { body?: unknown; query?: unknown; params?: unknown } }) =>
    checkInput(req.$params && "body" in req.$params ? req.$params : { query: req.query });

  return {
    name: "approval",
    mixins: [ApiGateway],

    settings: {
      $secureSettings: ["enginePassword"],
      ...settings,
      ip: settings.host,
      logRequest: "debug",
      logResponse: "debug",
      log4XXResponses: false,
      logRouteRegistration: "debug",
      routes: [
        {
          name: "approval-public",
          path: "/",
          mappingPolicy: "restrict",
          authentication: false,
          bodyParsers: false,
          onBeforeCall: checkParams,
          aliases: {
            "GET /api/environment": "approval.environment",
            "GET /api/openapi.json": "approval.openapi",
            "GET /"(_req: IncomingMessage, res: ServerResponse) {
              res.writeHead(302, { Location: "/forms/" });
              res.end();
            },
            "GET /swagger-ui/"(_req: IncomingMessage, res: ServerResponse) {
              sendHtml(res, swaggerIndex);
            },
          },
          onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
            this.sendApiError(req, res, err);
          },
        },
        {
          name: "approval-rest",
          path: "/api",
          mappingPolicy: "restrict",
          authentication: true,
          mergeParams: false,
          bodyParsers: { json: { strict: false, limit: "256kb" } },
          onBeforeCall: checkParams,
          aliases: {
            "POST /request": "approval.startRequest",
            "GET /request": "approval.listRequests",
            "GET /request/:id": "approval.getRequest",
            "GET /approve-request/id/:id": "approval.approveForm",
            "POST /approve-request/id/:id": "approval.approveSubmit",
            "GET /amend-request/id/:id": "approval.amendForm",
            "POST /amend-request/id/:id": "approval.amendSubmit",
          },
          onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
            this.sendApiError(req, res, err);
          },
        },
        // The platform pages' credentials and DOM helper (public/assets/page.js), which the forms import.
        { name: "approval-forms-shared", path: "/forms/shared", mappingPolicy: "restrict", use: [serveStatic(SHARED_ASSETS_DIR, { index: false })], aliases: {} },
        { name: "approval-forms", path: "/forms", mappingPolicy: "restrict", use: [serveStatic(FORMS_DIR, { index: ["index.html"] })], aliases: {} },
        { name: "approval-swagger-ui", path: "/swagger-ui", mappingPolicy: "restrict", use: [serveStatic(swaggerUiDir, { index: false })], aliases: {} },
      ],
      onError(this: any, req: IncomingMessage, res: ServerResponse, err: Error) {
        this.sendApiError(req, res, err);
      },
    },

    hooks: {
      before: {
        // The HTTP server listens before started() has opened the database and the engine: hold requests until then.
        async "*"(this: any) {
          await this.startedOnce;
        },
      },
    },

    actions: {
      environment: {
        handler(this: any) {
          return {
            applicationName: this.settings.applicationName,
            tasklistUrl: this.settings.tasklistUrl,
            users: this.directory.users.map((u: DirectoryUser) => ({ id: u.id, username: u.username, displayName: u.displayName ?? u.username })),
          };
        },
      },

      openapi: {
        handler(this: any) {
          return this.openApi();
        },
      },

      /** The application's state: engine, deployment, external tasks. Not routed; for tests and operators. */
      status: {
        visibility: "public",
        async handler(this: any) {
          const engine = this.engine as (ProcessEngine & { status?: () => unknown }) | null;
          return {
            applicationName: this.settings.applicationName,
            engine: this.engine ? (this.settings.engineUrl ? "operaton" : "embedded") : null,
            engineReady: this.engineReady,
            engineError: this.engineError,
            processDefinitionId: this.definitionId,
            port: this.server?.address()?.port ?? null,
            externalTasks: typeof (engine as Partial<OperatonEngine> | null)?.workerStatus === "function" ? (engine as OperatonEngine).workerStatus() : typeof engine?.status === "function" ? await engine.status() : null,
          };
        },
      },

      startRequest: {
        params: { body: draft },
        async handler(this: any, ctx: ApiContext) {
          const user: User = this.userOf(ctx);
          const allowed = await starters();
          if (!allowed.users.includes(user.username) && !user.groups.some((g) => allowed.groups.includes(g))) {
            throw forbidden(`${user.username} may not start "${PROCESS_KEY}" (starters: ${[...allowed.users, ...allowed.groups].join(", ")})`);
          }
          const engine: ProcessEngine = await this.readyEngine();
          const request: ApprovalRequest = await this.requests.create(ctx.params.body as ApprovalRequestDraft, user.username);
          let processInstanceId: string;
          try {
            ({ processInstanceId } = await this.startProcess(engine, request));
          } catch (err) {
            await this.requests.discard(request.id).catch(() => undefined);
            throw apiErrorOf(err, `Starting the approval of request ${request.id}`);
          }
          await this.requests.setProcessInstance(request.id, processInstanceId);
          ctx.meta.$statusCode = 201;
          ctx.meta.$location = `/api/request/${encodeURIComponent(request.id)}`;
          return { ...request, processInstanceId };
        },
      },

      listRequests: {
        async handler(this: any, ctx: ApiContext) {
          return this.requests.listFor(this.userOf(ctx).username);
        },
      },

      getRequest: {
        params: { params: byId },
        async handler(this: any, ctx: ApiContext) {
          const request: ApprovalRequest | null = await this.requests.get(ctx.params.params.id);
          const history: RequestLogEntry[] = request ? await this.requests.history(request.id) : [];
          if (!request || !maySeeRequest(this.userOf(ctx), request, history)) throw notFound(`Request ${ctx.params.params.id} not found`);
          return { ...request, history };
        },
      },

      approveForm: {
        params: { params: byId },
        async handler(this: any, ctx: ApiContext) {
          const { task, request } = await this.taskForm(ctx, TASKS.approve);
          return { task: taskDto(task, request), approvalRequest: request };
        },
      },

      approveSubmit: {
        params: {
          params: byId,
          body: { type: "object", strict: "remove", props: { decision: { type: "enum", values: [...DECISIONS], description: "APPROVE, REJECT or RETURN" }, comment } },
        },
        async handler(this: any, ctx: ApiContext) {
          const { task } = await this.taskForm(ctx, TASKS.approve);
          const decision = ctx.params.body.decision as Decision;
          await this.completeTask(ctx, task, { [VARIABLES.approveDecision]: decision, [VARIABLES.comment]: ctx.params.body.comment ?? null });
          ctx.meta.$statusCode = 204;
          return null;
        },
      },

      amendForm: {
        params: { params: byId },
        async handler(this: any, ctx: ApiContext) {
          const { task, request, variables } = await this.taskForm(ctx, TASKS.amend);
          return { task: taskDto(task, request), approvalRequest: request, comment: typeof variables.comment === "string" ? variables.comment : null };
        },
      },

      amendSubmit: {
        params: {
          params: byId,
          body: {
            type: "object",
            strict: "remove",
            props: {
              action: { type: "enum", values: [...AMEND_ACTIONS], description: "RESUBMIT (with the amended request) or CANCEL" },
              approvalRequest: { ...draft, optional: true, description: "The amended request (required to resubmit)" },
              comment,
            },
          },
        },
        async handler(this: any, ctx: ApiContext) {
          const { task, request } = await this.taskForm(ctx, TASKS.amend);
          const action = ctx.params.body.action as AmendAction;
          const amended = ctx.params.body.approvalRequest as ApprovalRequestDraft | undefined;
          if (action === "RESUBMIT" && !amended) {
            throw validationError("To resubmit, send the amended request", [{ field: "body.approvalRequest", type: "required", message: "The 'approvalRequest' field is required to resubmit." }]);
          }
          this.assertNotClaimedByOther(ctx, task);
          if (action === "RESUBMIT") await this.requests.amend(request.id, amended!);
          await this.completeTask(ctx, task, { [VARIABLES.amendAction]: action, [VARIABLES.comment]: ctx.params.body.comment ?? null });
          ctx.meta.$statusCode = 204;
          return null;
        },
      },
    },

    methods: {
      // ---- authentication and errors ----

      /** The caller the gate identified: the platform's modes (JWT, and the header where enabled). */
      authenticate(this: any, _ctx: Context, _route: unknown, req: GatedRequest): User & { id?: string } {
        return callerOf(req, this.auth, true)!.user;
      },

      /** No route took the request: 405 if the path exists for another method, else 404. */
      send404(this: any, req: IncomingMessage, res: ServerResponse) {
        sendUnrouted(this.aliases, req, res);
      },

      /** moleculer-web's last-resort error handler: the same typed answer, and no stack in the log (issue 13). */
      errorHandler(this: any, req: IncomingMessage, res: ServerResponse, err: unknown) {
        this.sendApiError(req, res, err);
      },

      /** moleculer-web's request handler behind the shared gate: refused requests reach no route. */
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

      sendApiError(this: any, req: IncomingMessage, res: ServerResponse, err: unknown) {
        const challenge = `${this.auth.settings.jwt ? "Bearer" : "Header"} realm="example-process-approval"`;
        sendError(res, err, errorResponse(err).status === 401 ? { "WWW-Authenticate": challenge } : {}, { req, logger: this.logger });
      },

      // ---- the engine ----

      /** The engine once its BPMN is deployed; 503 when it is not (yet), after a short wait. */
      async readyEngine(this: any): Promise<ProcessEngine> {
        const deadline = Date.now() + 5000;
        while (!this.engineReady && this.engine && Date.now() < deadline && !this.stopping) await sleep(100);
        if (!this.engine) throw unavailable(`The application's engine is not available: ${this.engineError ?? "not started"}`);
        if (!this.engineReady) throw unavailable(`The application's engine is not ready: ${this.engineError ?? "deploying"}`);
        return this.engine;
      },

      /** Deploys the BPMN (unchanged: nothing new) and finds the definition to start. */
      async prepareEngine(this: any): Promise<void> {
        const engine: ProcessEngine = this.engine;
        await engine.deploy(`${this.settings.applicationName}`, [approvalBpmn()]);
        this.definitionId = await this.latestDefinitionId(engine);
        this.engineReady = true;
        this.engineError = null;
        this.logger.info(`Request Approval: ${PROCESS_KEY} deployed (${this.definitionId}) on the ${this.settings.engineUrl ? `engine at ${this.settings.engineUrl}` : "embedded engine"}`);
      },

      /** Keeps trying to deploy until it works or the service stops (the engine may start after us). */
      async prepareEngineUntilReady(this: any): Promise<void> {
        for (let attempt = 0; !this.stopping && !this.engineReady; attempt++) {
          try {
            await this.prepareEngine();
          } catch (err) {
            this.engineError = (err as Error).message;
            this.logger.warn(`Request Approval: deploying ${PROCESS_KEY} failed (attempt ${attempt + 1}; retrying): ${this.engineError}`);
            await sleep(Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)), this.abort.signal);
          }
        }
      },

      async latestDefinitionId(this: any, engine: ProcessEngine): Promise<string> {
        const page = await engine.adapter.listProcessDefinitions({ firstResult: 0, maxResults: 10, processDefinitionKeys: [PROCESS_KEY], latestVersionOnly: true });
        const latest = page.rows.filter((d) => d.key === PROCESS_KEY).sort((a, b) => b.version - a.version)[0];
        if (!latest) throw new Error(`the engine has no process definition "${PROCESS_KEY}" after deploying it`);
        return latest.id;
      },

      async startProcess(this: any, engine: ProcessEngine, request: ApprovalRequest): Promise<{ processInstanceId: string }> {
        const start = (definitionId: string) =>
          engine.adapter.startProcess({
            processDefinitionId: definitionId,
            businessKey: request.id,
            variables: { [VARIABLES.request]: request.id, [VARIABLES.originator]: request.originator },
          });
        try {
          return await start(this.definitionId);
        } catch (err) {
          // A newer version deployed meanwhile, or the known one removed: look again once.
          if (!isEngineError(err, "gone") && !isEngineError(err, "invalid")) throw err;
          this.definitionId = await this.latestDefinitionId(engine);
          return start(this.definitionId);
        }
      },

      // ---- task forms ----

      /** The open task behind a form, if it is this form's and the user may work on it (else 404, as if absent). */
      async taskForm(this: any, ctx: ApiContext, taskDefinitionKey: string): Promise<{ task: EngineTaskWithDetails; request: ApprovalRequest; variables: JsonObject }> {
        const engine: ProcessEngine = await this.readyEngine();
        const id = ctx.params.params.id;
        const missing = () => notFound(`No open ${taskDefinitionKey === TASKS.approve ? "approve" : "amend"} task ${id} for you`);
        let task: EngineTaskWithDetails | null = null;
        try {
          const open = await engine.adapter.getTask(id);
          if (open && open.taskDefinitionKey === taskDefinitionKey) {
            const definition = await engine.adapter.getProcessDefinition(open.processDefinitionId);
            if (definition?.key === PROCESS_KEY) task = await engine.adapter.loadTaskDetails(open);
          }
        } catch (err) {
          throw apiErrorOf(err, `Reading task ${id}`);
        }
        if (!task || !mayWorkOn(this.userOf(ctx), task)) throw missing();
        const variables = plainValues(task.variables);
        const requestId = variables[VARIABLES.request];
        const request: ApprovalRequest | null = typeof requestId === "string" ? await this.requests.get(requestId) : null;
        if (!request) throw notFound(`Task ${id} refers to no known request (${JSON.stringify(requestId ?? null)})`);
        return { task, request, variables };
      },

      assertNotClaimedByOther(this: any, ctx: ApiContext, task: EngineTaskWithDetails): void {
        const { username } = this.userOf(ctx);
        if (task.assignee && task.assignee !== username) throw conflict(`Task ${task.id} is claimed by ${task.assignee}`, { assignee: task.assignee });
      },

      /** Completes as the user: claims first when nobody holds the task, so that the engine records who did it. */
      async completeTask(this: any, ctx: ApiContext, task: EngineTaskWithDetails, variables: JsonObject): Promise<void> {
        const engine: ProcessEngine = await this.readyEngine();
        const { username } = this.userOf(ctx);
        this.assertNotClaimedByOther(ctx, task);
        try {
          if (!task.assignee) await engine.adapter.claim(task.id, username);
          await engine.adapter.complete(task.id, variables);
        } catch (err) {
          throw apiErrorOf(err, `Completing task ${task.id}`);
        }
      },

      // ---- service tasks ----

      /** `approval-load-request`: the request's content into the process; a fresh decision. */
      async loadRequest(this: any, task: ExternalTaskInput): Promise<JsonObject> {
        const request = await this.requestOfTask(task);
        return {
          [VARIABLES.applicant]: request.applicant,
          [VARIABLES.subject]: request.subject,
          [VARIABLES.amount]: request.amount,
          [VARIABLES.currency]: request.currency,
          [VARIABLES.approveDecision]: "",
          [VARIABLES.amendAction]: "",
          [VARIABLES.approvalDueDate]: new Date(Date.now() + this.settings.approvalDueInMs).toISOString(),
        };
      },

      /** `approval-audit`: records the audit point on the request and sends the request's data entry. */
      async audit(this: any, task: ExternalTaskInput): Promise<JsonObject> {
        const state = task.variables[VARIABLES.auditState];
        if (!isAuditState(state)) throw new Error(`audit task ${task.activityId} has no valid input parameter ${VARIABLES.auditState} (${JSON.stringify(state ?? null)})`);
        const request: ApprovalRequest = await this.requestOfTask(task);
        const point = AUDIT_POINTS[state];
        const username: string | null = point.actingTask ? await this.lastCompleter(task.processInstanceId, point.actingTask, request.id) : request.originator;
        const commentValue = task.variables[VARIABLES.comment];
        const { entry, request: current } = await this.requests.recordAudit({
          requestId: request.id,
          eventKey: task.id,
          status: state,
          processingType: point.processingType,
          username,
          log: point.log,
          logNotes: point.actingTask && typeof commentValue === "string" && commentValue !== "" ? commentValue : null,
        });
        const plan = requestDataEntry(current, entry, state);
        await this.broker.call(plan.action, plan.params);
        return {};
      },

      async requestOfTask(this: any, task: ExternalTaskInput): Promise<ApprovalRequest> {
        const requestId = task.variables[VARIABLES.request];
        if (typeof requestId !== "string" || requestId === "") {
          throw new Error(`process instance ${task.processInstanceId} has no "${VARIABLES.request}" variable: start approvals with POST /api/request of ${this.settings.applicationName}`);
        }
        const request: ApprovalRequest | null = await this.requests.get(requestId);
        if (!request) throw new Error(`request ${requestId} of process instance ${task.processInstanceId} is unknown to ${this.settings.applicationName}`);
        return request;
      },

      /**
       * Who completed the instance's last task of a kind: the engine records the completer as the assignee (both
       * this API and the engine connector claim before completing). Read from the engine's finished tasks since
       * shortly before the request's previous audit point.
       */
      async lastCompleter(this: any, processInstanceId: string, taskDefinitionKey: string, requestId: string): Promise<string | null> {
        const engine: ProcessEngine = this.engine;
        const previous: string | null = await this.requests.lastAuditTime(requestId);
        // Clocks of engine and application may differ: look back generously.
        const since = previous ? new Date(Date.parse(previous) - 10 * 60_000).toISOString() : null;
        let best: { endTime: string; assignee: string | null } | null = null;
        const pageSize = 200;
        for (let firstResult = 0, pages = 0; pages < 50; pages++, firstResult += pageSize) {
          const page = await engine.adapter.listFinishedTasksSince({ since, firstResult, maxResults: pageSize, processDefinitionKeys: [PROCESS_KEY] });
          for (const row of page.rows) {
            if (row.processInstanceId !== processInstanceId || row.taskDefinitionKey !== taskDefinitionKey || row.outcome !== "completed") continue;
            if (!best || row.endTime > best.endTime) best = { endTime: row.endTime, assignee: row.assignee };
          }
          if (page.done) break;
        }
        return best?.assignee ?? null;
      },

      /** The application's part of starting (the HTTP server is the gateway mixin's): database, engine, BPMN. */
      async startApplication(this: any): Promise<void> {
        const s: ApprovalSettings = this.settings;
        this.requests = await RequestStore.open({ databaseUrl: s.databaseUrl, pgliteDir: s.databaseUrl || s.pgliteDir === "memory" ? null : s.pgliteDir, schema: s.schema });
        const engine: ProcessEngine =
          options.engine ??
          (s.engineUrl
            ? // Loaded only here: its external-task client (and the HTTP stack under it) is not needed on the embedded engine.
              new (await import("../engine/operaton/operaton-engine.ts")).OperatonEngine({
                baseUrl: s.engineUrl,
                username: s.engineUsername,
                password: s.enginePassword,
                deploymentSource: s.applicationName,
                worker: { asyncResponseTimeout: s.externalTaskLongPollMs },
                logger: this.logger,
              })
            : await createEmbeddedEngine({ ...s.embeddedEngine, logger: this.logger }));
        this.engine = engine;
        const retry = { retries: s.externalTaskRetries, retryTimeoutMs: 2000 };
        engine.subscribe(TOPICS.loadRequest, (task) => this.loadRequest(task), { ...retry, lockDuration: 30_000 });
        engine.subscribe(TOPICS.audit, (task) => this.audit(task), { ...retry, lockDuration: 30_000 });
        await engine.start();
        registerEngine(s.applicationName, engine);
        try {
          await this.prepareEngine();
        } catch (err) {
          this.engineError = (err as Error).message;
          this.logger.warn(`Request Approval: deploying ${PROCESS_KEY} failed; retrying in the background: ${this.engineError}`);
          this.preparing = this.prepareEngineUntilReady();
        }
        const address = this.server?.address();
        if (address && typeof address === "object") {
          this.logger.info(`Request Approval ${this.auth.describe()}`);
          this.logger.info(`Request Approval listening on http://localhost:${address.port} (forms /forms/, REST /api, Swagger UI /swagger-ui/)`);
        }
      },

      // ---- OpenAPI ----

      openApi(this: any) {
        if (this.openApiCache) return this.openApiCache;
        const action = (name: string) => this.schema.actions[name]?.params;
        const request = { type: "object", description: "An approval request: id, subject, applicant, amount, currency, originator, status, processInstanceId, revision, createdAt, updatedAt" };
        const routes: OpenApiRoute[] = [
          { method: "GET", path: "/api/environment", tag: "environment", summary: "Application name, task list URL and users", authenticated: false, responses: { 200: { description: "{ applicationName, tasklistUrl, users }" } } },
          { method: "POST", path: "/api/request", tag: "requests", summary: "Submit a request: starts its approval", authenticated: true, params: action("startRequest"), responses: { 201: { description: "The request", schema: request }, 403: { description: "The user may not start approvals" } } },
          { method: "GET", path: "/api/request", tag: "requests", summary: "The requests the user submitted or applies for", authenticated: true, responses: { 200: { description: "Requests", schema: { type: "array", items: request } } } },
          { method: "GET", path: "/api/request/:id", tag: "requests", summary: "One request with its history", authenticated: true, params: action("getRequest"), responses: { 200: { description: "The request", schema: request }, 404: { description: "Not found (or not visible to the user)" } } },
          { method: "GET", path: "/api/approve-request/id/:id", tag: "approve task", summary: "Form data of an approve task", authenticated: true, params: action("approveForm"), responses: { 200: { description: "{ task, approvalRequest }" }, 404: { description: "No such open task for the user" } } },
          { method: "POST", path: "/api/approve-request/id/:id", tag: "approve task", summary: "Decide: completes the approve task", authenticated: true, params: action("approveSubmit"), responses: { 204: { description: "Completed" }, 404: { description: "No such open task for the user" }, 409: { description: "Claimed by someone else" } } },
          { method: "GET", path: "/api/amend-request/id/:id", tag: "amend task", summary: "Form data of an amend task", authenticated: true, params: action("amendForm"), responses: { 200: { description: "{ task, approvalRequest, comment }" }, 404: { description: "No such open task for the user" } } },
          { method: "POST", path: "/api/amend-request/id/:id", tag: "amend task", summary: "Resubmit the amended request or cancel it: completes the amend task", authenticated: true, params: action("amendSubmit"), responses: { 204: { description: "Completed" }, 404: { description: "No such open task for the user" }, 409: { description: "Claimed by someone else" } } },
        ];
        const document = openApiDocument(
          {
            title: "Request Approval API",
            version: "1.0.0",
            description: `The example process application ${this.settings.applicationName}: submit requests, and the data and submits of its task forms. Authenticate as on the platform: a Bearer JWT, or X-Current-User-ID where the development header is enabled. Errors are \`{ type, message, data }\`.`,
          },
          routes,
        );
        this.openApiCache = document;
        return document;
      },
    },

    created(this: any) {
      this.directory = Directory.load();
      this.auth = new Authenticator(security, this.directory);
      this.gate = new Gate(this.auth, { streamPaths: [] });
      this.engine = null;
      this.engineReady = false;
      this.engineError = null;
      this.definitionId = null;
      this.stopping = false;
      this.abort = new AbortController();
      this.startedOnce = new Promise<void>((resolve) => (this.markStarted = resolve));
    },

    async started(this: any) {
      try {
        await this.startApplication();
      } finally {
        this.markStarted();
      }
    },

    async stopped(this: any) {
      this.stopping = true;
      this.abort.abort();
      await this.preparing;
      if (this.engine) {
        unregisterEngine(this.settings.applicationName, this.engine);
        await this.engine.stop();
      }
      await this.requests?.close();
    },
  };
}

// The engine connector of this application ----------------------------------------------------------------------------------

/** As the generic connector's; the application's name, process and enrichment are the defaults. */
export type ApprovalConnectorOptions = EngineConnectorOptions;

/**
 * The engine connector for Request Approval: its application name, its process only (unless
 * ENGINE_PROCESS_KEYS says otherwise), its enrichment (unless ENGINE_ENRICHMENT says otherwise); on Operaton when
 * ENGINE_URL is set, else on the engine the `approval` service registers in this process.
 */
export function createApprovalConnector(options: ApprovalConnectorOptions = {}): ServiceSchema<EngineConnectorServiceSettings> {
  const env = options.env;
  const fromEnv = engineConnectorSettingsFromEnv(env);
  const engineUrl = options.settings?.engineUrl !== undefined ? options.settings.engineUrl : (fromEnv.engineUrl ?? null);
  return createEngineConnector({
    ...options,
    env,
    settings: {
      processDefinitionKeys: fromEnv.processDefinitionKeys ?? [PROCESS_KEY],
      enrichment: fromEnv.enrichment ?? approvalEnrichment,
      ...options.settings,
      applicationName: options.settings?.applicationName ?? APPLICATION_NAME,
      engineUrl,
    },
    // Without an engine URL the connector takes the engine the `approval` service registers in this process.
    adapter: options.adapter,
  });
}

export default createApprovalService();
