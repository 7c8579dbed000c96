// Service tasks of Operaton / Camunda 7 (`camunda:type="external"`) done by this process: a thin worker over
// camunda-external-task-client-js 3.1.0 that fixes its sharp edges. Every worker gets a unique id (the
// library's default is a literal shared by everyone); fetching uses long polling (`asyncResponseTimeout`);
// every outcome is reported explicitly — success completes, a BpmnError thrown by a handler becomes
// `handleBpmnError`, anything else `handleFailure` with the remaining retries and a growing retry timeout
// (a handler that just throws would otherwise leave the task locked until its lock expires); and stopping
// cancels the pending long poll and waits for the handlers in flight.
import { Client, Variables, BasicAuthInterceptor, type Handler, type Interceptor, type SubscribeOptions, type Task, type TaskService, type TypedValue } from "camunda-external-task-client-js";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { decodeVariables, encodeTypedValue, type StructuredEncoding } from "../../domain/engine/variables.ts";
import type { JsonObject } from "../../domain/types.ts";
import { plainValues } from "../../domain/engine/variables.ts";
import { sleep } from "../../lib/sleep.ts";

export interface ExternalTaskLogger {
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface ExternalTaskWorkerOptions {
  /** …/engine-rest */
  baseUrl: string;
  /** Default: host, process and a random suffix, so that no two workers share one. */
  workerId?: string;
  username?: string | null;
  password?: string | null;
  /** Long polling: how long the engine may hold a fetch open while there is nothing to do, ms. */
  asyncResponseTimeout?: number;
  /** Default lock per task, ms. */
  lockDuration?: number;
  maxTasks?: number;
  maxParallelExecutions?: number;
  /** Pause between two fetches, ms. */
  interval?: number;
  logger?: ExternalTaskLogger;
}

export interface TopicOptions extends Pick<SubscribeOptions, "lockDuration" | "variables" | "processDefinitionKey" | "processDefinitionKeyIn" | "tenantIdIn" | "localVariables"> {
  /** Attempts before the engine raises an incident (the first failure leaves `retries - 1`). Default 3. */
  retries?: number;
  /** Wait before the first retry, ms; doubled for every further one. Default 5,000. */
  retryTimeoutMs?: number;
}

/** Thrown by a handler to take the BPMN error path (a boundary error event) instead of failing the task. */
export class BpmnError extends Error {
  readonly code: string;
  readonly variables: JsonObject;

  constructor(code: string, message?: string, variables: JsonObject = {}) {
    super(message ?? code);
    this.name = "BpmnError";
    this.code = code;
    this.variables = variables;
  }
}

export interface ExternalTaskInput {
  id: string;
  topicName: string;
  processInstanceId: string;
  processDefinitionKey: string;
  activityId: string;
  businessKey: string | null;
  /** Retries left, as the engine says (null before the first failure). */
  retries: number | null;
  /** The fetched variables as plain JSON. */
  variables: JsonObject;
}

export interface ExternalTaskControl {
  /** Keeps the lock for a long-running handler. */
  extendLock(ms: number): Promise<void>;
}

/** Returns the process variables to complete with (or nothing). */
export type ExternalTaskHandler = (task: ExternalTaskInput, control: ExternalTaskControl) => Promise<JsonObject | void> | JsonObject | void;

export interface ExternalTaskStats {
  workerId: string;
  fetched: number;
  completed: number;
  failed: number;
  bpmnErrors: number;
  /** Reports (complete, failure, BPMN error) the engine did not accept; those tasks wait for their lock to expire. */
  reportErrors: number;
  pollErrors: number;
  lastError: string | null;
}

function messageOf(err: unknown): string {
  const engine = err as { engineMsg?: string; message?: string };
  return String(engine?.engineMsg ?? engine?.message ?? err);
}

export class ExternalTaskWorker {
  readonly workerId: string;
  private readonly client: Client;
  private readonly logger: ExternalTaskLogger;
  private readonly abort = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private structured: StructuredEncoding = "Json";
  private stopped = false;
  private started = false;
  private pollInFlight = false;
  private readonly stats: ExternalTaskStats;

  constructor(options: ExternalTaskWorkerOptions) {
    this.workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.logger = options.logger ?? console;
    this.stats = { workerId: this.workerId, fetched: 0, completed: 0, failed: 0, bpmnErrors: 0, reportErrors: 0, pollErrors: 0, lastError: null };
    const interceptors: Interceptor[] = [
      // Lets stop() cancel a long poll instead of waiting out asyncResponseTimeout.
      (config) => ({ ...config, signal: this.abort.signal }),
    ];
    if (options.username) interceptors.push(new BasicAuthInterceptor({ username: options.username, password: options.password ?? "" }));
    this.client = new Client({
      baseUrl: options.baseUrl,
      workerId: this.workerId,
      asyncResponseTimeout: options.asyncResponseTimeout ?? 10_000,
      lockDuration: options.lockDuration ?? 30_000,
      maxTasks: options.maxTasks ?? 10,
      maxParallelExecutions: options.maxParallelExecutions,
      interval: options.interval ?? 100,
      autoPoll: false,
      interceptors,
    });
    this.client.on("poll:start", () => (this.pollInFlight = true));
    this.client.on("poll:success", (tasks: Task[]) => {
      this.pollInFlight = false;
      this.stats.fetched += tasks.length;
    });
    this.client.on("poll:error", (err: unknown) => {
      this.pollInFlight = false;
      if (this.stopped) return;
      this.stats.pollErrors++;
      this.stats.lastError = messageOf(err);
      this.logger.warn(`External task worker ${this.workerId}: fetchAndLock failed: ${messageOf(err)}`);
    });
  }

  /** Handles the tasks of one topic. */
  subscribe(topic: string, options: TopicOptions, handler: ExternalTaskHandler): void {
    const { retries = 3, retryTimeoutMs = 5_000, ...subscribeOptions } = options;
    const wrapped: Handler = ({ task, taskService }) => {
      const run = this.execute(task, taskService, handler, { retries, retryTimeoutMs });
      this.inFlight.add(run);
      return run.finally(() => this.inFlight.delete(run));
    };
    this.client.subscribe(topic, subscribeOptions as SubscribeOptions, wrapped);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.client.start();
  }

  /** Stops fetching, cancels a pending long poll, and waits for the handlers in flight. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.client.stop();
    await Promise.allSettled([...this.inFlight]);
    // Handlers are done; now the pending fetch may go (tasks it locked are handed back when their lock ends).
    this.abort.abort();
    const deadline = Date.now() + 2000;
    while (this.pollInFlight && Date.now() < deadline) await sleep(20);
  }

  status(): ExternalTaskStats {
    return { ...this.stats };
  }

  private variablesOf(values: JsonObject): Variables {
    const variables = new Variables();
    for (const [name, value] of Object.entries(values)) variables.setTyped(name, encodeTypedValue(value, this.structured) as TypedValue);
    return variables;
  }

  private async execute(task: Task, taskService: TaskService, handler: ExternalTaskHandler, retry: { retries: number; retryTimeoutMs: number }): Promise<void> {
    if (this.stopped) {
      // Fetched while stopping: give it back at once rather than hold it until the lock expires.
      await taskService.unlock(task).catch(() => undefined);
      return;
    }
    const input: ExternalTaskInput = {
      id: task.id,
      topicName: task.topicName,
      processInstanceId: task.processInstanceId,
      processDefinitionKey: task.processDefinitionKey,
      activityId: task.activityId,
      businessKey: task.businessKey ?? null,
      retries: task.retries ?? null,
      variables: plainValues(decodeVariables(task.variables.getAllTyped())),
    };
    let result: JsonObject | void;
    try {
      result = await handler(input, { extendLock: (ms) => taskService.extendLock(task, ms) });
    } catch (err) {
      if (err instanceof BpmnError) {
        await this.report("handleBpmnError", task, () => taskService.handleBpmnError(task, err.code, err.message, this.variablesOf(err.variables)));
        this.stats.bpmnErrors++;
        return;
      }
      await this.fail(task, taskService, err, retry);
      return;
    }
    try {
      await this.complete(task, taskService, result ?? {});
      this.stats.completed++;
    } catch (err) {
      // The engine refused the completion (e.g. a variable it cannot store): a failure like any other.
      await this.fail(task, taskService, err, retry);
    }
  }

  private async complete(task: Task, taskService: TaskService, values: JsonObject): Promise<void> {
    try {
      await taskService.complete(task, this.variablesOf(values));
    } catch (err) {
      const structuredRefused = /Unsupported value type 'Json'|Cannot find serializer/i.test(messageOf(err));
      if (this.structured !== "Json" || !structuredRefused) throw err;
      // No Spin plugin in this engine: structured values go as JSON text from now on.
      this.structured = "String";
      await taskService.complete(task, this.variablesOf(values));
    }
  }

  private async fail(task: Task, taskService: TaskService, err: unknown, retry: { retries: number; retryTimeoutMs: number }): Promise<void> {
    const left = Math.max(0, (task.retries ?? retry.retries) - 1);
    const used = Math.max(0, retry.retries - 1 - left);
    const error = err as Error;
    this.logger.warn(`External task ${task.id} (${task.topicName}) failed; ${left} retries left: ${messageOf(err)}`);
    await this.report("handleFailure", task, () =>
      taskService.handleFailure(task, {
        errorMessage: messageOf(err).slice(0, 600),
        errorDetails: error?.stack ?? String(err),
        retries: left,
        retryTimeout: retry.retryTimeoutMs * 2 ** used,
      }),
    );
    this.stats.failed++;
  }

  private async report(what: string, task: Task, call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (err) {
      this.stats.reportErrors++;
      this.stats.lastError = messageOf(err);
      this.logger.error(`External task ${task.id}: ${what} was not accepted (the task waits for its lock to expire): ${messageOf(err)}`);
    }
  }
}
