// What a process application needs of its BPMN engine, beyond what the engine connector reads and performs
// (EngineAdapter): deploying its BPMN, and doing its service tasks (`camunda:type="external"`). Two engines
// implement it: Operaton / Camunda 7 over REST (engine/operaton/operaton-engine.ts) and the embedded `bpmn-engine`
// (stores/engine/embedded-engine.ts). One BPMN file serves both.
//
// In the embedded platform the application and its engine connector run in one process and must share one
// engine: the application registers it here under its application name, and the connector takes it from here.
import type { EngineAdapter } from "./engine-adapter.ts";
import type { ExternalTaskHandler, TopicOptions } from "./external-tasks.ts";

export interface BpmnResource {
  /** File name, e.g. "process_approve_request.bpmn". */
  name: string;
  /** The BPMN 2.0 XML. */
  content: string;
}

export interface ProcessEngine {
  /** The engine as the engine connector sees it. */
  readonly adapter: EngineAdapter;
  /** Deploys resources; a resource unchanged since its last deployment is not deployed again. */
  deploy(deploymentName: string, resources: BpmnResource[]): Promise<void>;
  /**
   * Does the service tasks of one topic: the handler's returned variables complete the task; a thrown
   * BpmnError (external-tasks.ts) takes the BPMN error path; any other error fails the attempt (retried, then an
   * incident).
   */
  subscribe(topic: string, handler: ExternalTaskHandler, options?: TopicOptions): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const engines = new Map<string, ProcessEngine>();
const waiting = new Map<string, ((engine: ProcessEngine) => void)[]>();

/** Makes an application's engine available to the other services of this process. */
export function registerEngine(applicationName: string, engine: ProcessEngine): void {
  engines.set(applicationName, engine);
  for (const resolve of waiting.get(applicationName) ?? []) resolve(engine);
  waiting.delete(applicationName);
}

export function unregisterEngine(applicationName: string, engine: ProcessEngine): void {
  if (engines.get(applicationName) === engine) engines.delete(applicationName);
}

/** The engine an application of this process registered; waits (bounded) for it to be registered. */
export function engineOf(applicationName: string, timeoutMs = 60_000): Promise<ProcessEngine> {
  const engine = engines.get(applicationName);
  if (engine) return Promise.resolve(engine);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const list = waiting.get(applicationName) ?? [];
      waiting.set(applicationName, list.filter((r) => r !== done));
      reject(new Error(`No engine registered for application "${applicationName}" in this process within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    const done = (found: ProcessEngine) => {
      clearTimeout(timer);
      resolve(found);
    };
    waiting.set(applicationName, [...(waiting.get(applicationName) ?? []), done]);
  });
}
