// The embedded engine's glue to `bpmn-engine` 25, which runs from the model of engine/bpmn-model.ts (bpmn-moddle
// with camunda-bpmn-moddle, parsed once per resource, read for the `camunda:` attributes): one process instance is one bpmn-engine Engine, run one *step* at a time — start it, or recover it from its saved
// state, deliver one signal (a user task completed, an external task done or failed), and let it run until
// every path waits or ends. The caller then reads what waits, the variables and the state, and saves them.
// Between steps nothing runs in memory, so the saved state is the whole truth and a restart loses nothing.
//
// Decisions that shape it:
// - Process variables live under one key of bpmn-engine's environment variables (VARIABLES_KEY), because
//   bpmn-engine writes its own run message (`fields`, `content`, `properties`) into the variables at every run
//   and would overwrite a process variable of that name.
// - `${…}` expressions (conditions, error codes, …) go to the project's own resolver over those variables
//   (domain/engine/expressions.ts); bpmn-engine's default one knows neither operators nor bare names.
// - An external service task (`camunda:type="external"`) gets a behaviour of its own that waits like a user
//   task: the engine persists it as waiting, and the worker's result arrives as a signal (or an error with a
//   code, which a boundary error event catches).
// - A definition can hold several executable processes; only the one started runs (the others are marked
//   not executable when the source is serialized).
// - The serialized source is the same for every instance of a definition: it is kept once per definition and
//   left out of the saved instance state.
import { Engine } from "bpmn-engine";
import type { ModdleContext } from "bpmn-moddle";
import { EventEmitter } from "node:events";
import { hasExpression, isExpression, resolveTemplate, type ExpressionScope } from "../../domain/engine/expressions.ts";
import type { JsonObject } from "../../domain/types.ts";
import { flowTargets, isStartElement, parseBpmn, parseBpmnContext, type BpmnModel, type FlowElement, type ProcessModel } from "../bpmn-model.ts";
import { isExternalTask, type ElementBehaviour } from "./camunda-attributes.ts";

/** The key of bpmn-engine's environment variables under which the process variables are kept. */
export const VARIABLES_KEY = "processVariables";

// What is used of bpmn-engine and bpmn-elements objects (their published types are looser or different).

interface BpmnMessage {
  content: Record<string, unknown> & { executionId: string; message?: unknown; code?: string };
  fields: Record<string, unknown>;
  properties: { type?: string; correlationId?: string };
}

interface BpmnBroker {
  subscribeTmp(exchange: string, pattern: string, handler: (routingKey: string, message: BpmnMessage) => void, options: Record<string, unknown>): void;
  publish(exchange: string, routingKey: string, content: Record<string, unknown>, properties?: Record<string, unknown>): void;
  cancel(consumerTag: string): void;
}

interface BpmnEnvironment {
  variables: Record<string, unknown>;
}

interface BpmnActivity {
  id: string;
  type: string;
  isStart?: boolean;
  behaviour: ElementBehaviour;
  broker: BpmnBroker;
  Behaviour: unknown;
  environment: BpmnEnvironment;
}

interface BpmnApi {
  id: string;
  type: string;
  executionId: string;
  owner: BpmnActivity;
  environment: BpmnEnvironment;
  content: Record<string, unknown>;
  signal(message?: unknown): void;
  sendApiMessage(action: string, content?: Record<string, unknown>): void;
}

interface BpmnProcess {
  id: string;
  name?: string;
  isExecutable: boolean;
  behaviour: ElementBehaviour;
  environment: BpmnEnvironment;
}

interface BpmnDefinition {
  getProcesses(): BpmnProcess[];
}

interface BpmnExecution {
  activityStatus: "executing" | "timer" | "wait" | "idle";
  definitions: BpmnDefinition[];
  getPostponed(): BpmnApi[];
}

interface BpmnEngine extends EventEmitter {
  state: "idle" | "running" | "stopped" | "error";
  execution: BpmnExecution | null;
  execute(options: Record<string, unknown>): Promise<BpmnExecution>;
  recover(state: unknown): BpmnEngine;
  resume(options: Record<string, unknown>): Promise<BpmnExecution>;
  getState(): Promise<{ definitions: { source?: string }[] } & Record<string, unknown>>;
  stop(): Promise<void>;
}

// The external task behaviour -----------------------------------------------------------------------------------------

/**
 * A service task done outside the engine: it waits (like a user task) until it is signalled with the worker's
 * variables, or failed with a BPMN error code that a boundary error event may catch. Follows bpmn-elements'
 * message protocol for activity behaviours: `execute` subscribes to the activity's api messages and
 * publishes `activity.wait`; the outcome goes to the `execution` exchange.
 */
class ExternalTaskBehaviour {
  private readonly broker: BpmnBroker;
  readonly id: string;
  readonly type: string;

  constructor(activity: BpmnActivity) {
    this.broker = activity.broker;
    this.id = activity.id;
    this.type = activity.type;
  }

  execute(executeMessage: BpmnMessage): void {
    const content = executeMessage.content;
    this.broker.subscribeTmp("api", `activity.#.${content.executionId}`, (_routingKey, message) => this.onApiMessage(content, message), {
      noAck: true,
      consumerTag: `_api-${content.executionId}`,
    });
    this.broker.publish("event", "activity.wait", { ...content, state: "wait" });
  }

  private onApiMessage(content: BpmnMessage["content"], message: BpmnMessage): void {
    const { type, correlationId } = message.properties;
    const done = () => this.broker.cancel(`_api-${content.executionId}`);
    switch (type) {
      case "signal":
        done();
        this.broker.publish("execution", "execute.completed", { ...content, output: message.content.message, state: "signal" }, { correlationId });
        return;
      case "error": {
        done();
        const error = Object.assign(new Error(String(message.content.message ?? message.content.code)), { name: "BpmnError", code: message.content.code });
        this.broker.publish("execution", "execute.error", { ...content, error }, { mandatory: true, correlationId });
        return;
      }
      case "discard":
        done();
        this.broker.publish("execution", "execute.discard", { ...content }, { correlationId });
        return;
      case "stop":
        done();
        return;
    }
  }
}

/** A manual task passes through, as in Camunda (bpmn-elements would make it wait like a user task). */
class PassThroughBehaviour {
  private readonly broker: BpmnBroker;

  constructor(activity: BpmnActivity) {
    this.broker = activity.broker;
  }

  execute(executeMessage: BpmnMessage): void {
    this.broker.publish("execution", "execute.completed", { ...executeMessage.content });
  }
}

function taskpoolExtension(activity: BpmnActivity): void {
  if (/^bpmn:(ServiceTask|SendTask|BusinessRuleTask)$/.test(activity.type) && isExternalTask(activity.behaviour)) activity.Behaviour = ExternalTaskBehaviour;
  if (activity.type === "bpmn:ManualTask") activity.Behaviour = PassThroughBehaviour;
}

const expressions = {
  /** bpmn-engine's context: `{ environment, ...message }`; expressions see the process variables. */
  resolveExpression(expression: string, context?: { environment?: BpmnEnvironment }): unknown {
    const scope = (context?.environment?.variables?.[VARIABLES_KEY] ?? {}) as ExpressionScope;
    return resolveTemplate(expression, scope);
  },
  isExpression,
  hasExpression,
};

function engineOptions(processKey: string): Record<string, unknown> {
  return {
    expressions,
    extensions: { taskpool: taskpoolExtension },
    settings: { enableDummyService: false },
    // Only the started process of a definition runs.
    extendFn(element: { $type?: string; id?: string; isExecutable?: boolean }) {
      if (element.$type === "bpmn:Process" && element.id !== processKey) element.isExecutable = false;
    },
  };
}

function newEngine(options: Record<string, unknown>): BpmnEngine {
  return new Engine(options as never) as unknown as BpmnEngine;
}

/** An engine for the parsed document (engine/bpmn-model.ts: the one parser), running only `processKey`. */
function engineFor(context: ModdleContext, processKey: string, name?: string): BpmnEngine {
  return newEngine({ ...(name === undefined ? {} : { name }), moddleContext: context, ...engineOptions(processKey) });
}

// Reading a resource ---------------------------------------------------------------------------------------------------

export interface ProcessDescription extends Omit<ProcessModel, "id" | "element"> {
  key: string;
  /** bpmn-engine's serialized source with only this process executable (executable processes only). */
  serializedSource: string | null;
  /** Elements the embedded engine cannot run as Camunda would. */
  warnings: string[];
}

const SERVICE_TASK = /^bpmn:(ServiceTask|SendTask|BusinessRuleTask)$/;

/** What of a process's elements (its own, not those of sub-processes) the embedded engine cannot run as Camunda would. */
export function warningsOf(process: ProcessModel): string[] {
  const warnings: string[] = [];
  const targets = flowTargets(process.element);
  for (const element of process.element.flowElements ?? []) {
    const { id, $type: type } = element;
    if (type === "bpmn:SequenceFlow") continue;
    if (SERVICE_TASK.test(type) && !isExternalTask(element as FlowElement & ElementBehaviour)) {
      warnings.push(`${id}: only external service tasks (camunda:type="external") run in the embedded engine`);
    }
    if (type === "bpmn:ScriptTask") warnings.push(`${id}: script tasks do not run in the embedded engine`);
    if (/^bpmn:(SubProcess|AdHocSubProcess|Transaction|CallActivity)$/.test(type)) warnings.push(`${id}: sub-processes and call activities are not supported by the embedded engine`);
    if (/^bpmn:(ReceiveTask|EventBasedGateway)$/.test(type)) warnings.push(`${id}: only user tasks and external tasks can be waited on in the embedded engine`);
    const definitions = element.eventDefinitions ?? [];
    if (definitions.some((definition) => definition.$type === "bpmn:TimerEventDefinition")) warnings.push(`${id}: timers are not kept across steps by the embedded engine`);
    if (type === "bpmn:IntermediateCatchEvent" || (isStartElement(element, targets) && definitions.length > 0)) {
      warnings.push(`${id}: message, signal and timer events cannot be waited on or started by in the embedded engine`);
    }
  }
  return warnings;
}

/**
 * The processes of a BPMN resource, parsed once (or of a model already parsed): what the model says of each,
 * with the embedded engine's warnings and, for an executable one, its serialized source. Rejects when it is not
 * valid BPMN.
 */
export async function describeResource(source: string | BpmnModel): Promise<ProcessDescription[]> {
  const model = typeof source === "string" ? await parseBpmn(source) : source;
  const result: ProcessDescription[] = [];
  for (const process of model.processes) {
    let serializedSource: string | null = null;
    if (process.executable) {
      const state = await engineFor(model.context, process.id).getState();
      serializedSource = state.definitions[0]?.source ?? null;
    }
    const { id, element: _element, ...described } = process;
    result.push({ key: id, ...described, serializedSource, warnings: warningsOf(process) });
  }
  return result;
}

// Running an instance ------------------------------------------------------------------------------------------------------

export interface WaitingActivity {
  executionId: string;
  activityId: string;
  kind: "userTask" | "externalTask";
  behaviour: ElementBehaviour;
}

export type RunOutcome = "waiting" | "completed" | "failed";

/** One step of one process instance on a bpmn-engine Engine. */
export class InstanceRun {
  private failure: Error | null = null;
  /** The start event the instance started at (a start step only). */
  startActivityId: string | null = null;

  private readonly engine: BpmnEngine;
  private readonly processKey: string;

  private constructor(engine: BpmnEngine, processKey: string) {
    this.engine = engine;
    this.processKey = processKey;
    engine.on("error", (err: unknown) => {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    });
  }

  private listener(): EventEmitter {
    const listener = new EventEmitter();
    listener.on("activity.start", (api: BpmnApi) => {
      if (api.type === "bpmn:StartEvent" && this.startActivityId === null) this.startActivityId = api.id;
    });
    return listener;
  }

  /** Starts a new instance of the process `processKey` of a BPMN source; resolves once it rests. */
  static async start(name: string, xml: string, processKey: string, variables: JsonObject): Promise<InstanceRun> {
    const engine = engineFor(await parseBpmnContext(xml), processKey, name);
    const run = new InstanceRun(engine, processKey);
    await engine.execute({ listener: run.listener(), variables: { [VARIABLES_KEY]: structuredClone(variables) } });
    await run.settle();
    return run;
  }

  /** Recovers an instance from its saved state (see `state()`) and the definition's serialized source. */
  static async recover(state: unknown, serializedSource: string, processKey: string): Promise<InstanceRun> {
    const saved = structuredClone(state) as { definitions?: { source?: string }[] };
    for (const definition of saved.definitions ?? []) definition.source = serializedSource;
    const engine = newEngine(engineOptions(processKey)).recover(saved);
    const run = new InstanceRun(engine, processKey);
    await engine.resume({ listener: run.listener() });
    await run.settle();
    return run;
  }

  /** Lets the engine run until nothing executes any more (everything waits or has ended). */
  async settle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.failure || this.engine.state === "error") return;
      if ((this.engine.execution?.activityStatus ?? "idle") !== "executing") return;
      if (Date.now() > deadline) {
        this.failure = new Error(`the process did not come to rest within ${timeoutMs} ms (an activity the embedded engine cannot wait on?)`);
        return;
      }
    }
  }

  get outcome(): RunOutcome {
    if (this.failure || this.engine.state === "error") return "failed";
    return this.engine.state === "running" ? "waiting" : "completed";
  }

  get error(): Error | null {
    return this.failure ?? (this.engine.state === "error" ? new Error("the process failed") : null);
  }

  private postponed(): BpmnApi[] {
    return this.engine.execution?.getPostponed() ?? [];
  }

  /** The user tasks and external tasks that wait now. */
  waiting(): WaitingActivity[] {
    const result: WaitingActivity[] = [];
    for (const api of this.postponed()) {
      const kind = api.type === "bpmn:UserTask" ? "userTask" : api.owner?.Behaviour === ExternalTaskBehaviour ? "externalTask" : null;
      if (kind) result.push({ executionId: api.executionId, activityId: api.id, kind, behaviour: api.owner.behaviour });
    }
    return result;
  }

  private process(): BpmnProcess {
    const definition = this.engine.execution?.definitions[0];
    const bp = definition?.getProcesses().find((candidate) => candidate.id === this.processKey);
    if (!bp) throw new Error(`process ${this.processKey} is not part of this instance`);
    return bp;
  }

  /** The process variables now (a copy). */
  variables(): JsonObject {
    return structuredClone((this.process().environment.variables[VARIABLES_KEY] ?? {}) as JsonObject);
  }

  /** Sets process variables (before a signal, so that the paths after it see them). */
  setVariables(values: JsonObject): void {
    const environment = this.process().environment;
    environment.variables[VARIABLES_KEY] = { ...((environment.variables[VARIABLES_KEY] ?? {}) as JsonObject), ...structuredClone(values) };
  }

  private api(executionId: string): BpmnApi {
    const api = this.postponed().find((candidate) => candidate.executionId === executionId);
    if (!api) throw new Error(`no activity with execution ${executionId} waits in this instance`);
    return api;
  }

  /** Completes a waiting user task or external task; resolves once the instance rests again. */
  async signal(executionId: string): Promise<void> {
    this.api(executionId).signal({});
    await this.settle();
  }

  /** Throws a BPMN error from a waiting external task; resolves once the instance rests again. */
  async throwError(executionId: string, code: string, message: string): Promise<void> {
    this.api(executionId).sendApiMessage("error", { code, message });
    await this.settle();
  }

  /** The saved state of a waiting instance, without the definition's source (JSON). */
  async state(): Promise<JsonObject> {
    const state = JSON.parse(JSON.stringify(await this.engine.getState())) as JsonObject & { definitions: { source?: string }[] };
    for (const definition of state.definitions) delete definition.source;
    return state;
  }

  /** Stops what still waits in memory (the saved state stays as it is). */
  async dispose(): Promise<void> {
    if (this.engine.state !== "running") return;
    await Promise.race([this.engine.stop().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}
