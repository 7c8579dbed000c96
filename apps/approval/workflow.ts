// The request lifecycle of the example application "Request Approval" on its BPMN engine: the engine itself
// (Operaton / Camunda 7 over REST when ENGINE_URL is set, otherwise the embedded engine; registered in this process,
// engine/connector/process-engine.ts, so that an engine connector on the same node uses the very same engine), the
// BPMN deployed at start (unchanged: nothing new), the requests' start, the approve and amend task forms' data and
// submits, and the process's service tasks (external tasks): loading the request into the process, and the audit
// points that move the request's status and its data entry in the data pool (apps/approval/requests.ts).
import { Errors } from "moleculer";
import { conflict, forbidden, notFound, unavailable, validationError } from "../../lib/errors.ts";
import { sleep } from "../../lib/sleep.ts";
import { isEngineError, type EngineTask, type EngineTaskWithDetails } from "../../engine/connector/engine-adapter.ts";
import { registerEngine, unregisterEngine, type ProcessEngine } from "../../engine/connector/process-engine.ts";
import type { ExternalTaskInput, ExternalTaskLogger } from "../../engine/connector/external-tasks.ts";
import type { EmbeddedEngineOptions } from "../../engine/embedded/engine.ts";
import { plainValues } from "../../domain/engine/variables.ts";
import type { JsonObject, User } from "../../domain/types.ts";
import { APPROVERS, AUDIT_POINTS, PROCESS_KEY, TASKS, TOPICS, VARIABLES, approvalBpmn, isAuditState, starters, type AmendAction, type Decision } from "./process.ts";
import { RequestStore, requestDataEntry, type ApprovalRequest, type ApprovalRequestDraft, type RequestLogEntry } from "./requests.ts";
import type { ApprovalSettings } from "./settings.ts";
import type { ActionCall } from "../../lib/actions.ts";

/** Engine errors as the API's errors. */
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

/** The task as the forms see it. */
export function taskDto(task: EngineTask | EngineTaskWithDetails, request: ApprovalRequest) {
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

/** The embedded engine, loaded only when used (it brings bpmn-engine and its moddle along). */
async function createEmbeddedEngine(options: EmbeddedEngineOptions): Promise<ProcessEngine> {
  const { EmbeddedEngine } = await import("../../engine/embedded/engine.ts");
  return new EmbeddedEngine(options);
}

/** An engine that can tell its external tasks' state (Operaton's worker, the embedded engine). */
type EngineWithStatus = ProcessEngine & { workerStatus?: () => unknown; status?: () => unknown };

export interface WorkflowOptions {
  settings: ApprovalSettings;
  logger: ExternalTaskLogger;
  /** Calls a platform action (the data entries: `dataEntry.*`). */
  call: ActionCall;
  /** An engine to use instead of the one the settings describe (tests, benchmarks). */
  engine?: ProcessEngine;
}

export class ApprovalWorkflow {
  engine: ProcessEngine | null = null;
  engineReady = false;
  engineError: string | null = null;
  definitionId: string | null = null;
  private store: RequestStore | null = null;
  private stopping = false;
  private readonly abort = new AbortController();
  private preparing: Promise<void> | undefined;
  private readonly options: WorkflowOptions;
  private readonly settings: ApprovalSettings;
  private readonly logger: ExternalTaskLogger;

  constructor(options: WorkflowOptions) {
    this.options = options;
    this.settings = options.settings;
    this.logger = options.logger;
  }

  get requests(): RequestStore {
    if (!this.store) throw unavailable("The application's database is not open");
    return this.store;
  }

  // ---- start and stop ----

  /** Opens the database, starts the engine with the service tasks' workers, deploys the BPMN. */
  async start(): Promise<void> {
    const s = this.settings;
    this.store = await RequestStore.open({ databaseUrl: s.databaseUrl, pgliteDir: s.databaseUrl || s.pgliteDir === "memory" ? null : s.pgliteDir, schema: s.schema });
    const engine: ProcessEngine =
      this.options.engine ??
      (s.engineUrl
        ? // Loaded only here: its external-task client (and the HTTP stack under it) is not needed on the embedded engine.
          new (await import("../../engine/operaton/operaton-engine.ts")).OperatonEngine({
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
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.preparing;
    if (this.engine) {
      unregisterEngine(this.settings.applicationName, this.engine);
      await this.engine.stop();
    }
    await this.store?.close();
  }

  /** The engine's state: which one, deployment, external tasks. */
  async status() {
    const engine = this.engine as EngineWithStatus | null;
    return {
      engine: engine ? (this.settings.engineUrl ? "operaton" : "embedded") : null,
      engineReady: this.engineReady,
      engineError: this.engineError,
      processDefinitionId: this.definitionId,
      externalTasks: typeof engine?.workerStatus === "function" ? engine.workerStatus() : typeof engine?.status === "function" ? await engine.status() : null,
    };
  }

  // ---- the engine ----

  /** The engine once its BPMN is deployed; 503 when it is not (yet), after a short wait. */
  private async readyEngine(): Promise<ProcessEngine> {
    const deadline = Date.now() + 5000;
    while (!this.engineReady && this.engine && Date.now() < deadline && !this.stopping) await sleep(100);
    if (!this.engine) throw unavailable(`The application's engine is not available: ${this.engineError ?? "not started"}`);
    if (!this.engineReady) throw unavailable(`The application's engine is not ready: ${this.engineError ?? "deploying"}`);
    return this.engine;
  }

  /** Deploys the BPMN (unchanged: nothing new) and finds the definition to start. */
  private async prepareEngine(): Promise<void> {
    const engine = this.engine!;
    await engine.deploy(`${this.settings.applicationName}`, [approvalBpmn()]);
    this.definitionId = await this.latestDefinitionId(engine);
    this.engineReady = true;
    this.engineError = null;
    this.logger.info(`Request Approval: ${PROCESS_KEY} deployed (${this.definitionId}) on the ${this.settings.engineUrl ? `engine at ${this.settings.engineUrl}` : "embedded engine"}`);
  }

  /** Keeps trying to deploy until it works or the service stops (the engine may start after us). */
  private async prepareEngineUntilReady(): Promise<void> {
    for (let attempt = 0; !this.stopping && !this.engineReady; attempt++) {
      try {
        await this.prepareEngine();
      } catch (err) {
        this.engineError = (err as Error).message;
        this.logger.warn(`Request Approval: deploying ${PROCESS_KEY} failed (attempt ${attempt + 1}; retrying): ${this.engineError}`);
        await sleep(Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5)), this.abort.signal);
      }
    }
  }

  private async latestDefinitionId(engine: ProcessEngine): Promise<string> {
    const page = await engine.adapter.listProcessDefinitions({ firstResult: 0, maxResults: 10, processDefinitionKeys: [PROCESS_KEY], latestVersionOnly: true });
    const latest = page.rows.filter((d) => d.key === PROCESS_KEY).sort((a, b) => b.version - a.version)[0];
    if (!latest) throw new Error(`the engine has no process definition "${PROCESS_KEY}" after deploying it`);
    return latest.id;
  }

  private async startProcess(engine: ProcessEngine, request: ApprovalRequest): Promise<{ processInstanceId: string }> {
    const start = (definitionId: string) =>
      engine.adapter.startProcess({
        processDefinitionId: definitionId,
        businessKey: request.id,
        variables: { [VARIABLES.request]: request.id, [VARIABLES.originator]: request.originator },
      });
    try {
      return await start(this.definitionId!);
    } catch (err) {
      // A newer version deployed meanwhile, or the known one removed: look again once.
      if (!isEngineError(err, "gone") && !isEngineError(err, "invalid")) throw err;
      this.definitionId = await this.latestDefinitionId(engine);
      return start(this.definitionId);
    }
  }

  // ---- the requests ----

  /** Submits a request and starts its approval. */
  async startRequest(user: User, draft: ApprovalRequestDraft): Promise<ApprovalRequest> {
    const allowed = await starters();
    if (!allowed.users.includes(user.username) && !user.groups.some((g) => allowed.groups.includes(g))) {
      throw forbidden(`${user.username} may not start "${PROCESS_KEY}" (starters: ${[...allowed.users, ...allowed.groups].join(", ")})`);
    }
    const engine = await this.readyEngine();
    const request = await this.requests.create(draft, user.username);
    let processInstanceId: string;
    try {
      ({ processInstanceId } = await this.startProcess(engine, request));
    } catch (err) {
      await this.requests.discard(request.id).catch(() => undefined);
      throw apiErrorOf(err, `Starting the approval of request ${request.id}`);
    }
    await this.requests.setProcessInstance(request.id, processInstanceId);
    return { ...request, processInstanceId };
  }

  listRequests(user: User): Promise<ApprovalRequest[]> {
    return this.requests.listFor(user.username);
  }

  /** One request with its history; 404 when absent or not visible to the user. */
  async getRequest(user: User, id: string): Promise<ApprovalRequest & { history: RequestLogEntry[] }> {
    const request = await this.requests.get(id);
    const history = request ? await this.requests.history(request.id) : [];
    if (!request || !maySeeRequest(user, request, history)) throw notFound(`Request ${id} not found`);
    return { ...request, history };
  }

  // ---- task forms ----

  async approveForm(user: User, id: string) {
    const { task, request } = await this.taskForm(user, id, TASKS.approve);
    return { task: taskDto(task, request), approvalRequest: request };
  }

  async approve(user: User, id: string, decision: Decision, comment: string | null | undefined): Promise<void> {
    const { task } = await this.taskForm(user, id, TASKS.approve);
    await this.completeTask(user, task, { [VARIABLES.approveDecision]: decision, [VARIABLES.comment]: comment ?? null });
  }

  async amendForm(user: User, id: string) {
    const { task, request, variables } = await this.taskForm(user, id, TASKS.amend);
    return { task: taskDto(task, request), approvalRequest: request, comment: typeof variables.comment === "string" ? variables.comment : null };
  }

  async amend(user: User, id: string, action: AmendAction, amended: ApprovalRequestDraft | undefined, comment: string | null | undefined): Promise<void> {
    const { task, request } = await this.taskForm(user, id, TASKS.amend);
    if (action === "RESUBMIT" && !amended) {
      throw validationError("To resubmit, send the amended request", [{ field: "body.approvalRequest", type: "required", message: "The 'approvalRequest' field is required to resubmit." }]);
    }
    this.assertNotClaimedByOther(user, task);
    if (action === "RESUBMIT" && amended) await this.requests.amend(request.id, amended);
    await this.completeTask(user, task, { [VARIABLES.amendAction]: action, [VARIABLES.comment]: comment ?? null });
  }

  /** The open task behind a form, if it is this form's and the user may work on it (else 404, as if absent). */
  private async taskForm(user: User, id: string, taskDefinitionKey: string): Promise<{ task: EngineTaskWithDetails; request: ApprovalRequest; variables: JsonObject }> {
    const engine = await this.readyEngine();
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
    if (!task || !mayWorkOn(user, task)) throw missing();
    const variables = plainValues(task.variables);
    const requestId = variables[VARIABLES.request];
    const request = typeof requestId === "string" ? await this.requests.get(requestId) : null;
    if (!request) throw notFound(`Task ${id} refers to no known request (${JSON.stringify(requestId ?? null)})`);
    return { task, request, variables };
  }

  private assertNotClaimedByOther(user: User, task: EngineTaskWithDetails): void {
    if (task.assignee && task.assignee !== user.username) throw conflict(`Task ${task.id} is claimed by ${task.assignee}`, { assignee: task.assignee });
  }

  /** Completes as the user: claims first when nobody holds the task, so that the engine records who did it. */
  private async completeTask(user: User, task: EngineTaskWithDetails, variables: JsonObject): Promise<void> {
    const engine = await this.readyEngine();
    this.assertNotClaimedByOther(user, task);
    try {
      if (!task.assignee) await engine.adapter.claim(task.id, user.username);
      await engine.adapter.complete(task.id, variables);
    } catch (err) {
      throw apiErrorOf(err, `Completing task ${task.id}`);
    }
  }

  // ---- service tasks ----

  /** `approval-load-request`: the request's content into the process; a fresh decision. */
  private async loadRequest(task: ExternalTaskInput): Promise<JsonObject> {
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
  }

  /** `approval-audit`: records the audit point on the request and sends the request's data entry. */
  private async audit(task: ExternalTaskInput): Promise<JsonObject> {
    const state = task.variables[VARIABLES.auditState];
    if (!isAuditState(state)) throw new Error(`audit task ${task.activityId} has no valid input parameter ${VARIABLES.auditState} (${JSON.stringify(state ?? null)})`);
    const request = await this.requestOfTask(task);
    const point = AUDIT_POINTS[state];
    const username = point.actingTask ? await this.lastCompleter(task.processInstanceId, point.actingTask, request.id) : request.originator;
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
    await this.options.call(plan.action, plan.params);
    return {};
  }

  private async requestOfTask(task: ExternalTaskInput): Promise<ApprovalRequest> {
    const requestId = task.variables[VARIABLES.request];
    if (typeof requestId !== "string" || requestId === "") {
      throw new Error(`process instance ${task.processInstanceId} has no "${VARIABLES.request}" variable: start approvals with POST /api/request of ${this.settings.applicationName}`);
    }
    const request = await this.requests.get(requestId);
    if (!request) throw new Error(`request ${requestId} of process instance ${task.processInstanceId} is unknown to ${this.settings.applicationName}`);
    return request;
  }

  /**
   * Who completed the instance's last task of a kind: the engine records the completer as the assignee (both
   * this API and the engine connector claim before completing). Read from the engine's finished tasks since
   * shortly before the request's previous audit point.
   */
  private async lastCompleter(processInstanceId: string, taskDefinitionKey: string, requestId: string): Promise<string | null> {
    const engine = this.engine!;
    const previous = await this.requests.lastAuditTime(requestId);
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
  }
}
