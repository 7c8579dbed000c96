// The embedded BPMN engine: a ProcessEngine over `bpmn-engine` 25 that runs the same BPMN files as Operaton
// (read once per resource with bpmn-moddle and camunda-bpmn-moddle, engine/bpmn-model.ts; `${…}` through
// domain/engine/expressions.ts) with no Java, its state in its own tables on PostgreSQL or PGlite (engine-store.ts).
//
// How it works: every change of a process instance is one *step* (bpmn-runtime.ts) — start it, or
// recover it from its saved bpmn-engine state and complete one user task or external task — run until
// everything waits or ends, and recorded in one transaction together with what the step did: user tasks and
// external tasks created and ended, variable updates, the instance's end. Steps of one instance never overlap
// (a lock per instance, and a revision check in the database), and nothing of an instance is kept in memory
// between steps, so a restart resumes exactly where the last committed step left off; a step that failed or
// was cut short by a crash left nothing behind. Times are the engine's clock, ISO UTC, so the connector's
// change feeds (adapter.ts) read tasks, instances and variables like Operaton's runtime and history.
//
// Service tasks with `camunda:type="external"` wait as external tasks; the engine's own worker loop hands
// them to the handlers subscribed for their topic, with Operaton's outcome semantics: returned variables
// complete the task, a thrown BpmnError takes the boundary error path, any other error is retried with a
// growing back-off and finally leaves an incident (the task stays, shown in status() and the log).
import { createHash, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { ExpressionError } from "../../domain/engine/expressions.ts";
import { shiftIsoDate } from "../../domain/engine/variables.ts";
import type { IsoDate, JsonObject } from "../../domain/types.ts";
import { embeddedDatabaseDirectory, schemaName } from "../../stores/database.ts";
import { readEnvironment } from "../../lib/env.ts";
import { EngineError, isEngineError, type StartProcessRequest } from "../connector/engine-adapter.ts";
import { EmbeddedAdapter, type EmbeddedEngineCore } from "./adapter.ts";
import { AttributeError, inputParameters, outputParameters, userTaskAttributes } from "./camunda-attributes.ts";
import type { InstanceRun, ProcessDescription, WaitingActivity } from "./bpmn-runtime.ts";
import { diffVariables, splitByScope } from "./variable-changes.ts";
import {
  ConcurrentStepError,
  EngineStore,
  type DefinitionRecord,
  type ExternalTaskRecord,
  type InstanceRecord,
  type OperationRecord,
  type StepWrite,
  type TaskRecord,
} from "./engine-store.ts";
import type { ExternalTaskHandler, ExternalTaskInput, TopicOptions } from "../connector/external-tasks.ts";
import type { BpmnResource, ProcessEngine } from "../connector/process-engine.ts";
import { sleep } from "../../lib/sleep.ts";
import { KeyedSerialQueue } from "../../lib/serial.ts";

/**
 * bpmn-engine and its BPMN moddle (about a hundred modules) are loaded by the first deployment that changes
 * something or the first step of an instance, not with the engine: a restart with nothing to deploy or to run does
 * not need them.
 */
let runtime: Promise<typeof import("./bpmn-runtime.ts")> | null = null;
function bpmnRuntime(): Promise<typeof import("./bpmn-runtime.ts")> {
  runtime ??= import("./bpmn-runtime.ts");
  return runtime;
}

export interface EmbeddedEngineLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface EmbeddedEngineOptions {
  /** The application the engine belongs to (logs, worker id, default PGlite directory). */
  applicationName?: string;
  /** postgres://… ; null or absent uses PGlite in `pgliteDir`. */
  databaseUrl?: string | null;
  /** PGlite directory; "memory" keeps everything in memory (tests). Default: the embedded database, DATA_DIR/pglite. */
  pgliteDir?: string;
  /** PostgreSQL schema of the engine's tables (default engine_<application>). */
  schema?: string;
  logger?: EmbeddedEngineLogger;
  /** The worker loop for external tasks. */
  externalTasks?: {
    /** Pause between two looks for due tasks when there was nothing to do, ms (new tasks wake it at once). */
    pollIntervalMs?: number;
    /** Handlers running at once. */
    maxParallel?: number;
  };
}

export interface DeployResult {
  /** Null when every resource was unchanged and nothing was deployed. */
  deploymentId: string | null;
  definitions: { id: string; key: string; version: number }[];
}

export interface EmbeddedEngineStatus {
  applicationName: string | null;
  workerId: string;
  started: boolean;
  topics: string[];
  externalTasks: { open: number; locked: number; incidents: number; completed: number; inFlight: number };
  handled: { completed: number; failed: number; bpmnErrors: number };
  incidents: { id: string; topic: string; activityId: string; processInstanceId: string; message: string | null; time: string | null }[];
  lastError: string | null;
}

interface Subscription {
  topic: string;
  handler: ExternalTaskHandler;
  options: TopicOptions;
}

/** What a step starts from. */
interface StepInput {
  instance: InstanceRecord;
  definition: DefinitionRecord;
  openTasks: TaskRecord[];
  openExternalTasks: ExternalTaskRecord[];
  /** Null for a new instance. */
  expectedRevision: number | null;
}

/** What a step's action ended, so that the ends are recorded as completions (others are deletions). */
interface StepEnds {
  completedTaskId?: string;
  completedExternalTaskId?: string;
}

/** How long stop() waits for handlers and steps in flight. */
const STOP_WAIT_MS = 30_000;

function messageOf(err: unknown): string {
  return String((err as Error)?.message ?? err);
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Variables as plain JSON (what a typed variable can hold); undefined values are dropped. */
function jsonVariables(values: JsonObject | null | undefined): JsonObject {
  return JSON.parse(JSON.stringify(values ?? {})) as JsonObject;
}


export class EmbeddedEngine implements ProcessEngine, EmbeddedEngineCore {
  readonly adapter: EmbeddedAdapter;
  readonly workerId: string;
  private readonly options: EmbeddedEngineOptions;
  private readonly logger: EmbeddedEngineLogger;
  private opening: Promise<EngineStore> | null = null;
  private lastTime = 0;

  /** Steps of one instance run one after the other. */
  private readonly instanceQueue = new KeyedSerialQueue();
  private readonly pending = new Set<Promise<unknown>>();
  private deploying: Promise<unknown> = Promise.resolve();

  private readonly subscriptions = new Map<string, Subscription>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private loop: Promise<void> | null = null;
  private wakeUp = new AbortController();
  private started = false;
  private stopping = false;
  private closed = false;
  private readonly stats = { completed: 0, failed: 0, bpmnErrors: 0, lastError: null as string | null };

  constructor(options: EmbeddedEngineOptions = {}) {
    this.options = options;
    this.logger = options.logger ?? console;
    const app = options.applicationName ?? "embedded";
    this.workerId = `${app}@${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.adapter = new EmbeddedAdapter(this);
  }

  // Life cycle ------------------------------------------------------------------------------------------------------

  /** The engine's tables (opened at the first need: deploying or reading may come before start()). */
  store(): Promise<EngineStore> {
    if (this.closed) return Promise.reject(new EngineError("unavailable", "the embedded engine is stopped", { reason: "the engine is stopped" }));
    this.opening ??= (async () => {
      const { databaseUrl = null } = this.options;
      const schema = this.options.schema ?? schemaName("engine", this.options.applicationName ?? "embedded");
      let pgliteDir: string | null = null;
      if (!databaseUrl) {
        const dir = this.options.pgliteDir ?? embeddedDatabaseDirectory(readEnvironment().dataDir);
        pgliteDir = dir === "memory" ? null : dir;
      }
      return EngineStore.open({ databaseUrl, pgliteDir, schema });
    })();
    // A failed opening (a locked directory, an unreachable server) is tried again at the next need.
    this.opening.catch(() => (this.opening = null));
    return this.opening;
  }

  async start(): Promise<void> {
    if (this.started) return;
    const store = await this.store();
    // On PGlite this process is the tables' only user: locks of an earlier run are stale at once.
    if (store.embedded) {
      const released = await store.releaseExternalTaskLocks(this.workerId);
      if (released > 0) this.logger.info(`Embedded engine: ${released} external task(s) locked before a restart are due again`);
    }
    this.started = true;
    this.loop = this.workLoop();
    const where = this.options.databaseUrl ? "PostgreSQL" : this.options.pgliteDir === "memory" ? "PGlite in memory" : `PGlite (${this.options.pgliteDir ?? "data dir"})`;
    this.logger.info(`Embedded BPMN engine${this.options.applicationName ? ` of ${this.options.applicationName}` : ""} started on ${where}; worker ${this.workerId}`);
  }

  /** Stops the worker loop, waits for the handlers and steps in flight, and closes the tables. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wakeUp.abort();
    await this.loop;
    // Handlers in flight finish and record their outcome; so does every step under way. A handler that hangs
    // is not waited for beyond a bound: its task is handed out again after the restart (at least once).
    const deadline = Date.now() + STOP_WAIT_MS;
    while ((this.inFlight.size > 0 || this.pending.size > 0) && Date.now() < deadline) {
      const timeout = new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref());
      await Promise.race([Promise.allSettled([...this.inFlight.values(), ...this.pending]), timeout]);
    }
    if (this.inFlight.size > 0) this.logger.warn(`Embedded engine: stopped with ${this.inFlight.size} external task handler(s) still running; their tasks are handed out again`);
    await this.deploying.catch(() => undefined);
    this.closed = true;
    if (this.opening) {
      const store = await this.opening.catch(() => null);
      await store?.close();
    }
  }

  // Helpers --------------------------------------------------------------------------------------------------------

  /** The engine's clock: ISO UTC, never going backwards within this process. */
  private now(): IsoDate {
    this.lastTime = Math.max(Date.now(), this.lastTime);
    return new Date(this.lastTime).toISOString();
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work)).catch(() => undefined);
    return work;
  }

  /** Runs `work` after every earlier work on the same instance. */
  private withInstance<T>(instanceId: string, work: () => Promise<T>): Promise<T> {
    return this.track(this.instanceQueue.run(instanceId, work));
  }

  /** Runs `work` on an open task, under its instance's lock; EngineError "gone" when it is not open. */
  private async withOpenTask<T>(taskId: string, work: (task: TaskRecord, store: EngineStore) => Promise<T>): Promise<T> {
    const store = await this.store();
    const found = await store.task(taskId);
    if (!found) throw new EngineError("gone", `Cannot find task with id ${taskId}`, { reason: "the task does not exist" });
    return this.withInstance(found.instanceId, async () => {
      const task = await store.task(taskId);
      if (!task || task.status !== "open") throw new EngineError("gone", `Cannot find task with id ${taskId}: it is ${task?.status ?? "gone"}`, { reason: `the task is ${task?.status ?? "gone"}` });
      return work(task, store);
    });
  }

  private suspendedTask(taskId: string): EngineError {
    return new EngineError("conflict", `Task ${taskId} is suspended`, { engineType: "SuspendedEntityInteractionException", reason: "the task's process instance is suspended" });
  }

  /** An engine failure as the adapter's error kinds (so that the connector retries or reports it). */
  private failureOf(err: unknown, what: string): EngineError {
    if (isEngineError(err)) return err;
    if (err instanceof ConcurrentStepError) return new EngineError("retry", `${what}: ${err.message}`, { reason: err.message });
    const invalid = err instanceof ExpressionError || err instanceof AttributeError || (err as Error)?.name === "ExpressionError";
    return new EngineError(invalid ? "invalid" : "failed", `${what}: ${messageOf(err)}`, { reason: messageOf(err), engineType: (err as Error)?.name ?? null });
  }

  // Deployments ------------------------------------------------------------------------------------------------------

  async deploy(deploymentName: string, resources: BpmnResource[]): Promise<void> {
    await this.deployResources(deploymentName, resources);
  }

  /**
   * Deploys the resources that changed since the last deployment of this name (compared by resource name and
   * content): each executable process in them becomes the next version of its key. Nothing changed, nothing
   * deployed — so an application may deploy at every start.
   */
  deployResources(deploymentName: string, resources: BpmnResource[]): Promise<DeployResult> {
    const run = this.deploying.then(() => this.deployNow(deploymentName, resources));
    this.deploying = run.catch(() => undefined);
    return this.track(run);
  }

  private async deployNow(deploymentName: string, resources: BpmnResource[]): Promise<DeployResult> {
    const store = await this.store();
    const changed: (BpmnResource & { hash: string })[] = [];
    for (const resource of resources) {
      const hash = sha256(resource.content);
      if ((await store.latestResourceHash(deploymentName, resource.name)) !== hash) changed.push({ ...resource, hash });
    }
    if (changed.length === 0) return { deploymentId: null, definitions: [] };
    const deploymentId = randomUUID();
    const definitions: Parameters<EngineStore["insertDeployment"]>[2] = [];
    for (const resource of changed) {
      let processes: ProcessDescription[];
      try {
        processes = await (await bpmnRuntime()).describeResource(resource.content);
      } catch (err) {
        throw new EngineError("invalid", `${resource.name} is not valid BPMN: ${messageOf(err)}`, { reason: messageOf(err) });
      }
      for (const bp of processes.filter((p) => p.executable)) {
        if (definitions.some((d) => d.key === bp.key)) throw new EngineError("invalid", `process ${bp.key} is defined twice in deployment ${deploymentName}`);
        for (const warning of bp.warnings) this.logger.warn(`Embedded engine: ${resource.name}: ${bp.key}: ${warning}`);
        definitions.push({
          id: (version) => `${bp.key}:${version}:${randomUUID()}`,
          key: bp.key,
          name: bp.name,
          versionTag: bp.versionTag,
          description: bp.description,
          deploymentId,
          resourceName: resource.name,
          startFormKey: bp.startFormKey,
          startableInTasklist: bp.startableInTasklist,
          candidateStarterUsers: bp.candidateStarterUsers,
          candidateStarterGroups: bp.candidateStarterGroups,
          suspended: false,
          serializedSource: bp.serializedSource!,
        });
      }
    }
    const created = await store.insertDeployment(
      { id: deploymentId, name: deploymentName, deploymentTime: this.now() },
      changed.map((resource) => ({ deploymentId, name: resource.name, content: resource.content, hash: resource.hash })),
      definitions,
    );
    this.logger.info(`Embedded engine: deployed ${deploymentName} (${created.map((d) => `${d.key} v${d.version}`).join(", ") || "no executable process"})`);
    return { deploymentId, definitions: created.map((d) => ({ id: d.id, key: d.key, version: d.version })) };
  }

  // Steps -------------------------------------------------------------------------------------------------------------

  /** What a finished step wrote: the instance's new state and its tasks and variable updates. */
  private async recordStep(run: InstanceRun, input: StepInput, ends: StepEnds, now: IsoDate): Promise<StepWrite> {
    if (run.outcome === "failed") throw run.error ?? new Error("the process failed");
    const { instance, definition } = input;
    const variables = run.variables();
    const waiting = run.waiting();
    const byExecution = new Map<string, WaitingActivity>(waiting.map((w) => [w.executionId, w]));
    const tasks: TaskRecord[] = [];
    const externalTasks: ExternalTaskRecord[] = [];

    // Ended: what waited before and waits no more — completed when the step completed it, else deleted (an
    // interrupting boundary event, or the end of the instance).
    for (const task of input.openTasks) {
      if (byExecution.get(task.executionId)?.kind === "userTask") continue;
      const completed = task.id === ends.completedTaskId;
      tasks.push({ ...task, status: completed ? "completed" : "deleted", endTime: now, deleteReason: completed ? "completed" : "deleted" });
    }
    for (const task of input.openExternalTasks) {
      if (byExecution.get(task.executionId)?.kind === "externalTask") continue;
      externalTasks.push({ ...task, status: task.id === ends.completedExternalTaskId ? "completed" : "deleted", endTime: now, lockUntil: null });
    }
    // Created: what waits now and did not before.
    const known = new Set([...input.openTasks.map((t) => t.executionId), ...input.openExternalTasks.map((t) => t.executionId)]);
    for (const activity of waiting) {
      if (known.has(activity.executionId)) continue;
      const inputs = inputParameters(activity.activityId, activity.behaviour, variables);
      const base = { instanceId: instance.id, definitionId: definition.id, definitionKey: definition.key, executionId: activity.executionId };
      if (activity.kind === "userTask") {
        const attributes = userTaskAttributes(activity.activityId, activity.behaviour, { ...variables, ...inputs }, now);
        tasks.push({
          ...base,
          id: randomUUID(),
          taskDefinitionKey: activity.activityId,
          ...attributes,
          owner: null,
          createTime: now,
          lastUpdated: null,
          localVariables: inputs,
          suspended: instance.state === "SUSPENDED",
          status: "open",
          endTime: null,
          deleteReason: null,
        });
      } else {
        const topic = activity.behaviour.topic;
        if (!topic) throw new AttributeError(activity.activityId, "topic", "an external task needs camunda:topic");
        externalTasks.push({
          ...base,
          id: randomUUID(),
          activityId: activity.activityId,
          topic,
          localVariables: inputs,
          createTime: now,
          status: "open",
          retries: null,
          retryAt: null,
          lockUntil: null,
          workerId: null,
          errorMessage: null,
          errorDetails: null,
          incidentTime: null,
          endTime: null,
        });
      }
    }

    const diff = diffVariables(instance.variables, variables, instance.variableMeta, {
      time: now,
      instanceId: instance.id,
      definitionId: definition.id,
      definitionKey: definition.key,
      newId: randomUUID,
    });
    const completed = run.outcome === "completed";
    return {
      instance: {
        ...instance,
        startActivityId: instance.startActivityId ?? run.startActivityId,
        state: completed ? "COMPLETED" : instance.state,
        endTime: completed ? now : null,
        variables,
        variableMeta: diff.meta,
        engineState: completed ? null : await run.state(),
        revision: instance.revision + 1,
      },
      expectedRevision: input.expectedRevision,
      tasks,
      externalTasks,
      variableUpdates: diff.updates,
    };
  }

  /**
   * One step of a running instance: recover it, let `act` deliver one signal, record the result. Runs under the
   * instance's lock; a failure records nothing.
   */
  private async advance(instanceId: string, what: string, act: (run: InstanceRun, input: StepInput) => Promise<StepEnds>): Promise<void> {
    const store = await this.store();
    const instance = await store.instance(instanceId);
    if (!instance || instance.endTime !== null || !instance.engineState) throw new EngineError("gone", `${what}: process instance ${instanceId} is not running`, { reason: "the process instance has ended" });
    const definition = await store.definition(instance.definitionId);
    if (!definition) throw new EngineError("failed", `${what}: the definition ${instance.definitionId} of instance ${instanceId} is missing`);
    const input: StepInput = {
      instance,
      definition,
      openTasks: await store.tasksOfInstance(instanceId, "open"),
      openExternalTasks: await store.externalTasksOfInstance(instanceId, "open"),
      expectedRevision: instance.revision,
    };
    let run: InstanceRun | null = null;
    try {
      run = await (await bpmnRuntime()).InstanceRun.recover(instance.engineState, definition.serializedSource, definition.key);
      if (run.outcome === "failed") throw run.error;
      const ends = await act(run, input);
      const write = await this.recordStep(run, input, ends, this.now());
      await store.writeStep(write);
      this.afterStep(write);
    } catch (err) {
      throw this.failureOf(err, what);
    } finally {
      await run?.dispose();
    }
  }

  private afterStep(write: StepWrite): void {
    if (write.externalTasks.some((task) => task.status === "open" && this.subscriptions.has(task.topic))) this.wake();
  }

  // Process instances -----------------------------------------------------------------------------------------------------

  async startProcess(request: StartProcessRequest): Promise<{ processInstanceId: string }> {
    const store = await this.store();
    const definition = await store.definition(request.processDefinitionId);
    if (!definition) throw new EngineError("gone", `No process definition ${request.processDefinitionId}`, { reason: "the process definition does not exist" });
    if (definition.suspended) throw new EngineError("conflict", `Process definition ${definition.id} is suspended`, { reason: "the process definition is suspended" });
    const resource = await store.resource(definition.deploymentId, definition.resourceName);
    if (!resource) throw new EngineError("failed", `the resource ${definition.resourceName} of ${definition.id} is missing`);
    const instanceId = randomUUID();
    const variables = jsonVariables(request.variables);
    await this.withInstance(instanceId, async () => {
      const now = this.now();
      let run: InstanceRun | null = null;
      try {
        run = await (await bpmnRuntime()).InstanceRun.start(instanceId, resource.content, definition.key, variables);
        const instance: InstanceRecord = {
          id: instanceId,
          definitionId: definition.id,
          definitionKey: definition.key,
          businessKey: request.businessKey ?? null,
          state: "ACTIVE",
          startTime: now,
          endTime: null,
          startActivityId: null,
          deleteReason: null,
          variables: {},
          variableMeta: {},
          engineState: null,
          revision: -1,
        };
        const write = await this.recordStep(run, { instance, definition, openTasks: [], openExternalTasks: [], expectedRevision: null }, {}, now);
        await store.writeStep(write);
        this.afterStep(write);
      } catch (err) {
        throw this.failureOf(err, `start of ${definition.key}`);
      } finally {
        await run?.dispose();
      }
    });
    return { processInstanceId: instanceId };
  }

  /** Starts the latest version of a process. */
  async startProcessByKey(key: string, businessKey: string | null = null, variables: JsonObject = {}): Promise<{ processInstanceId: string; processDefinitionId: string }> {
    const definition = await (await this.store()).latestDefinition(key);
    if (!definition) throw new EngineError("gone", `No process definition with key ${key}`, { reason: "the process is not deployed" });
    const { processInstanceId } = await this.startProcess({ processDefinitionId: definition.id, businessKey, variables });
    return { processInstanceId, processDefinitionId: definition.id };
  }

  /** Suspends a running instance: its tasks cannot be claimed or completed, its external tasks are not worked on. */
  suspendInstance(instanceId: string): Promise<void> {
    return this.changeSuspension(instanceId, true);
  }

  activateInstance(instanceId: string): Promise<void> {
    return this.changeSuspension(instanceId, false);
  }

  private async changeSuspension(instanceId: string, suspend: boolean): Promise<void> {
    const store = await this.store();
    await this.withInstance(instanceId, async () => {
      const instance = await store.instance(instanceId);
      if (!instance || instance.endTime !== null) throw new EngineError("gone", `process instance ${instanceId} is not running`);
      if ((instance.state === "SUSPENDED") === suspend) return;
      const now = this.now();
      const operation: OperationRecord = { id: randomUUID(), time: now, instanceId, definitionKey: instance.definitionKey, operation: suspend ? "Suspend" : "Activate" };
      const tasks = (await store.tasksOfInstance(instanceId, "open")).map((task) => ({ ...task, suspended: suspend, lastUpdated: now }));
      await store.writeStep({
        instance: { ...instance, state: suspend ? "SUSPENDED" : "ACTIVE", revision: instance.revision + 1 },
        expectedRevision: instance.revision,
        tasks,
        externalTasks: [],
        variableUpdates: [],
        operations: [operation],
      });
      if (!suspend) this.wake();
    });
  }

  /** Ends a running instance from outside (its open tasks are deleted), like deleting it in Operaton. */
  async cancelInstance(instanceId: string, reason: string | null = null): Promise<void> {
    const store = await this.store();
    await this.withInstance(instanceId, async () => {
      const instance = await store.instance(instanceId);
      if (!instance || instance.endTime !== null) throw new EngineError("gone", `process instance ${instanceId} is not running`);
      const now = this.now();
      const deleteReason = reason ?? "deleted";
      await store.writeStep({
        instance: { ...instance, state: "EXTERNALLY_TERMINATED", endTime: now, deleteReason: reason, engineState: null, revision: instance.revision + 1 },
        expectedRevision: instance.revision,
        tasks: (await store.tasksOfInstance(instanceId, "open")).map((task) => ({ ...task, status: "deleted" as const, endTime: now, deleteReason })),
        externalTasks: (await store.externalTasksOfInstance(instanceId, "open")).map((task) => ({ ...task, status: "deleted" as const, endTime: now, lockUntil: null })),
        variableUpdates: [],
      });
    });
  }

  // User tasks ----------------------------------------------------------------------------------------------------------

  /** Claims for a user; EngineError "conflict" when someone else holds the task. */
  async claim(taskId: string, userId: string): Promise<void> {
    await this.withOpenTask(taskId, async (task, store) => {
      if (task.suspended) throw this.suspendedTask(taskId);
      if (task.assignee === userId) return;
      if (task.assignee !== null) {
        throw new EngineError("conflict", `Cannot claim task '${taskId}': it is already claimed by someone else.`, {
          engineType: "TaskAlreadyClaimedException",
          reason: `the task is already claimed by ${task.assignee}`,
        });
      }
      await store.updateTask({ ...task, assignee: userId, lastUpdated: this.now() });
    });
  }

  async unclaim(taskId: string): Promise<void> {
    await this.setAssignee(taskId, null);
  }

  async setAssignee(taskId: string, userId: string | null): Promise<void> {
    await this.withOpenTask(taskId, async (task, store) => {
      if (task.suspended) throw this.suspendedTask(taskId);
      if (task.assignee === userId) return;
      await store.updateTask({ ...task, assignee: userId, lastUpdated: this.now() });
    });
  }

  async setFollowUpDate(taskId: string, followUpDate: IsoDate | null): Promise<void> {
    await this.withOpenTask(taskId, async (task, store) => {
      if (task.suspended) throw this.suspendedTask(taskId);
      const millis = followUpDate === null ? null : Date.parse(followUpDate);
      if (millis !== null && Number.isNaN(millis)) throw new EngineError("invalid", `not a date: ${followUpDate}`, { reason: `not a date: ${followUpDate}` });
      const value = millis === null ? null : new Date(millis).toISOString();
      if (task.followUpDate === value) return;
      await store.updateTask({ ...task, followUpDate: value, lastUpdated: this.now() });
    });
  }

  /**
   * Completes a user task with variables: those named like the task's input parameters stay the task's own,
   * the others are set on the process; output parameters are then mapped; the process goes on until it waits.
   */
  async complete(taskId: string, variables: JsonObject): Promise<void> {
    const values = jsonVariables(variables);
    const store = await this.store();
    const found = await store.task(taskId);
    if (!found || found.status !== "open") throw new EngineError("gone", `Cannot find task with id ${taskId}`, { reason: `the task is ${found?.status ?? "gone"}` });
    await this.withInstance(found.instanceId, () =>
      this.advance(found.instanceId, `completion of task ${taskId}`, async (run, input) => {
        const task = input.openTasks.find((t) => t.id === taskId);
        if (!task) throw new EngineError("gone", `Cannot find task with id ${taskId}: it ended meanwhile`, { reason: "the task has ended" });
        if (task.suspended) throw this.suspendedTask(taskId);
        await this.finishActivity(run, task.executionId, task.localVariables, values);
        return { completedTaskId: taskId };
      }),
    );
  }

  /** Sets an activity's completion variables and output parameters, then signals it. */
  private async finishActivity(run: InstanceRun, executionId: string, local: JsonObject, values: JsonObject): Promise<void> {
    const activity = run.waiting().find((w) => w.executionId === executionId);
    if (!activity) throw new EngineError("failed", `execution ${executionId} does not wait in the engine's state`);
    const scoped = splitByScope(values, local);
    run.setVariables(scoped.process);
    run.setVariables(outputParameters(activity.activityId, activity.behaviour, { ...run.variables(), ...scoped.local }));
    await run.signal(executionId);
  }

  // External tasks --------------------------------------------------------------------------------------------------------

  subscribe(topic: string, handler: ExternalTaskHandler, options: TopicOptions = {}): void {
    if (this.subscriptions.has(topic)) this.logger.warn(`Embedded engine: topic ${topic} subscribed again; the new handler replaces the old one`);
    this.subscriptions.set(topic, { topic, handler, options });
    this.wake();
  }

  private wake(): void {
    this.wakeUp.abort();
  }

  private async workLoop(): Promise<void> {
    const pollIntervalMs = this.options.externalTasks?.pollIntervalMs ?? 1000;
    while (!this.stopping) {
      this.wakeUp = new AbortController();
      let dispatched = 0;
      try {
        dispatched = await this.dispatchDueTasks();
      } catch (err) {
        if (this.stopping) break;
        this.stats.lastError = messageOf(err);
        this.logger.warn(`Embedded engine: looking for external tasks failed: ${messageOf(err)}`);
      }
      if (this.stopping) break;
      // Retries come due by the clock: never sleep past the poll interval.
      if (dispatched === 0) await sleep(pollIntervalMs, this.wakeUp.signal);
    }
  }

  /** Locks and starts the due external tasks of the subscribed topics, as far as handler slots are free. */
  private async dispatchDueTasks(): Promise<number> {
    const store = await this.store();
    const maxParallel = this.options.externalTasks?.maxParallel ?? 4;
    let dispatched = 0;
    for (const subscription of this.subscriptions.values()) {
      const free = maxParallel - this.inFlight.size;
      if (free <= 0 || this.stopping) break;
      const now = this.now();
      const { processDefinitionKey, processDefinitionKeyIn } = subscription.options;
      const keys = processDefinitionKeyIn ?? (processDefinitionKey ? [processDefinitionKey] : null);
      const due = await store.dueExternalTasks(subscription.topic, keys, now, [...this.inFlight.keys()], free);
      for (const task of due) {
        const lockMs = subscription.options.lockDuration ?? 30_000;
        if (!(await store.lockExternalTask(task.id, this.workerId, now, shiftIsoDate(now, lockMs)))) continue;
        const work = this.handle(task, subscription).finally(() => {
          this.inFlight.delete(task.id);
          this.wake();
        });
        this.inFlight.set(task.id, work);
        dispatched++;
      }
    }
    return dispatched;
  }

  private async handle(task: ExternalTaskRecord, subscription: Subscription): Promise<void> {
    const store = await this.store();
    const instance = await store.instance(task.instanceId);
    if (!instance) return;
    const visible: JsonObject = { ...instance.variables, ...task.localVariables };
    const wanted = subscription.options.localVariables ? task.localVariables : visible;
    const names = subscription.options.variables;
    const input: ExternalTaskInput = {
      id: task.id,
      topicName: task.topic,
      processInstanceId: task.instanceId,
      processDefinitionKey: task.definitionKey,
      activityId: task.activityId,
      businessKey: instance.businessKey,
      retries: task.retries,
      variables: names ? Object.fromEntries(Object.entries(wanted).filter(([name]) => names.includes(name))) : structuredClone(wanted),
    };
    let result: JsonObject | void;
    try {
      result = await subscription.handler(input, {
        extendLock: async (ms) => {
          if (!(await store.extendExternalTaskLock(task.id, this.workerId, shiftIsoDate(this.now(), ms)))) {
            throw new EngineError("gone", `external task ${task.id} is no longer locked by this worker`);
          }
        },
      });
    } catch (err) {
      if ((err as Error)?.name === "BpmnError" && typeof (err as { code?: unknown }).code === "string") {
        const bpmnError = err as Error & { code: string; variables?: JsonObject };
        try {
          await this.throwBpmnError(task.id, bpmnError.code, bpmnError.message, bpmnError.variables ?? {});
          this.stats.bpmnErrors++;
        } catch (failure) {
          await this.recordFailure(task, subscription, failure);
        }
        return;
      }
      await this.recordFailure(task, subscription, err);
      return;
    }
    try {
      await this.completeExternalTask(task.id, result ?? {});
      this.stats.completed++;
    } catch (err) {
      // The process could not go on with these variables (e.g. a condition failed): a failure like any other.
      await this.recordFailure(task, subscription, err);
    }
  }

  /** Completes an external task with variables (as a worker would); the process goes on until it waits. */
  async completeExternalTask(externalTaskId: string, variables: JsonObject): Promise<void> {
    const values = jsonVariables(variables);
    const found = await (await this.store()).externalTask(externalTaskId);
    if (!found || found.status !== "open") throw new EngineError("gone", `external task ${externalTaskId} is not open`);
    await this.withInstance(found.instanceId, () =>
      this.advance(found.instanceId, `completion of external task ${externalTaskId} (${found.topic})`, async (run, input) => {
        const task = input.openExternalTasks.find((t) => t.id === externalTaskId);
        if (!task) throw new EngineError("gone", `external task ${externalTaskId} ended meanwhile`);
        await this.finishActivity(run, task.executionId, task.localVariables, values);
        return { completedExternalTaskId: externalTaskId };
      }),
    );
  }

  /** Throws a BPMN error from an external task; an error nobody catches fails the step (and so the attempt). */
  async throwBpmnError(externalTaskId: string, code: string, message: string, variables: JsonObject = {}): Promise<void> {
    const values = jsonVariables(variables);
    const found = await (await this.store()).externalTask(externalTaskId);
    if (!found || found.status !== "open") throw new EngineError("gone", `external task ${externalTaskId} is not open`);
    await this.withInstance(found.instanceId, () =>
      this.advance(found.instanceId, `BPMN error ${code} of external task ${externalTaskId} (${found.topic})`, async (run, input) => {
        const task = input.openExternalTasks.find((t) => t.id === externalTaskId);
        if (!task) throw new EngineError("gone", `external task ${externalTaskId} ended meanwhile`);
        run.setVariables(splitByScope(values, task.localVariables).process);
        await run.throwError(task.executionId, code, message);
        if (run.outcome === "failed") throw new EngineError("failed", `no boundary event catches BPMN error ${code} at ${task.activityId}: ${messageOf(run.error)}`);
        return {};
      }),
    );
  }

  /** A failed attempt: one retry less, the next after a doubled wait; none left is an incident. */
  private async recordFailure(task: ExternalTaskRecord, subscription: Subscription, err: unknown): Promise<void> {
    this.stats.failed++;
    this.stats.lastError = messageOf(err);
    if (this.closed) return;
    try {
      const store = await this.store();
      const current = await store.externalTask(task.id);
      if (!current || current.status !== "open") return;
      const retries = subscription.options.retries ?? 3;
      const retryTimeoutMs = subscription.options.retryTimeoutMs ?? 5000;
      const left = Math.max(0, (current.retries ?? retries) - 1);
      const used = Math.max(0, retries - 1 - left);
      const now = this.now();
      await store.failExternalTask(task.id, {
        retries: left,
        retryAt: left > 0 ? shiftIsoDate(now, retryTimeoutMs * 2 ** used) : null,
        errorMessage: messageOf(err).slice(0, 600),
        errorDetails: (err as Error)?.stack ?? null,
        incidentTime: left > 0 ? null : now,
      });
      if (left > 0) this.logger.warn(`Embedded engine: external task ${task.id} (${task.topic}, ${task.activityId}) failed; ${left} retries left: ${messageOf(err)}`);
      else this.logger.error(`Embedded engine: external task ${task.id} (${task.topic}, ${task.activityId}) of instance ${task.instanceId} failed for the last time; incident: ${messageOf(err)}`);
    } catch (failure) {
      this.logger.error(`Embedded engine: the failure of external task ${task.id} could not be recorded (it is tried again when its lock ends): ${messageOf(failure)}`);
    }
  }

  /** Gives an external task with an incident new retries (after its cause was fixed). */
  async retryExternalTask(externalTaskId: string, retries = 1): Promise<void> {
    if (!(await (await this.store()).retryExternalTask(externalTaskId, retries))) throw new EngineError("gone", `external task ${externalTaskId} is not open`);
    this.wake();
  }

  // Status -----------------------------------------------------------------------------------------------------------------

  async status(): Promise<EmbeddedEngineStatus> {
    const store = await this.store();
    const [counts, incidents] = await Promise.all([store.externalTaskCounts(), store.incidents(20)]);
    return {
      applicationName: this.options.applicationName ?? null,
      workerId: this.workerId,
      started: this.started && !this.stopping,
      topics: [...this.subscriptions.keys()],
      externalTasks: { ...counts, inFlight: this.inFlight.size },
      handled: { completed: this.stats.completed, failed: this.stats.failed, bpmnErrors: this.stats.bpmnErrors },
      incidents: incidents.map((task) => ({
        id: task.id,
        topic: task.topic,
        activityId: task.activityId,
        processInstanceId: task.instanceId,
        message: task.errorMessage,
        time: task.incidentTime,
      })),
      lastError: this.stats.lastError,
    };
  }
}
