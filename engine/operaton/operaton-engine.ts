// A process application's Operaton / Camunda 7 engine over its REST API (`…/engine-rest`): the engine
// connector's view of it (OperatonAdapter), deployments (`POST /deployment/create`, multipart, with duplicate
// filtering so that a restart of the application does not create a new version of an unchanged BPMN), and the
// service tasks (`camunda:type="external"`) done by an ExternalTaskWorker with long polling.
//
// Deploying and subscribing may happen in any order with start(): topics subscribed after start() are
// fetched from the next poll on. Stopping hands back nothing it has not finished: the worker waits for the
// handlers in flight and cancels its pending long poll.
import { EngineError } from "../connector/engine-adapter.ts";
import { OperatonAdapter } from "./operaton-adapter.ts";
import { OperatonClient } from "./operaton-client.ts";
import { ExternalTaskWorker, type ExternalTaskHandler, type ExternalTaskLogger, type ExternalTaskStats, type ExternalTaskWorkerOptions, type TopicOptions } from "../connector/external-tasks.ts";
import type { BpmnResource, ProcessEngine } from "../connector/process-engine.ts";

export interface OperatonEngineOptions {
  /** e.g. http://127.0.0.1:8180/engine-rest */
  baseUrl: string;
  username?: string | null;
  password?: string | null;
  /** Per REST request, ms. */
  timeoutMs?: number;
  /** Shown in the engine's deployment list as `source`. */
  deploymentSource?: string;
  /** Options of the external-task worker (its base URL and credentials are the engine's). */
  worker?: Pick<ExternalTaskWorkerOptions, "workerId" | "asyncResponseTimeout" | "lockDuration" | "maxTasks" | "maxParallelExecutions" | "interval">;
  logger?: ExternalTaskLogger;
}

/** What `POST /deployment/create` answers (only the fields used). */
interface DeploymentWithDefinitionsDto {
  id: string;
  name: string | null;
  deploymentTime: string;
  deployedProcessDefinitions?: Record<string, { id: string; key: string; version: number }> | null;
}

export interface DeploymentResult {
  deploymentId: string;
  /** Definitions this deployment created; empty when every resource was unchanged (nothing new deployed). */
  deployedProcessDefinitions: { id: string; key: string; version: number }[];
}

export class OperatonEngine implements ProcessEngine {
  readonly adapter: OperatonAdapter;
  private readonly client: OperatonClient;
  private readonly worker: ExternalTaskWorker;
  private readonly deploymentSource: string;
  private started = false;
  private stopped = false;

  constructor(options: OperatonEngineOptions) {
    this.client = new OperatonClient({ baseUrl: options.baseUrl, username: options.username, password: options.password, timeoutMs: options.timeoutMs });
    this.adapter = new OperatonAdapter(this.client);
    this.deploymentSource = options.deploymentSource ?? "taskpool";
    this.worker = new ExternalTaskWorker({
      baseUrl: this.client.baseUrl,
      username: options.username,
      password: options.password,
      logger: options.logger,
      ...options.worker,
    });
  }

  get workerId(): string {
    return this.worker.workerId;
  }

  /**
   * Deploys the resources as one deployment. With `enable-duplicate-filtering` and `deploy-changed-only` the
   * engine compares each resource with the last deployment of the same name and deploys only changed ones, so
   * that deploying at every start of the application is free when nothing changed.
   */
  async deploy(deploymentName: string, resources: BpmnResource[]): Promise<void> {
    await this.deployResources(deploymentName, resources);
  }

  /** deploy(), answering what the engine created. */
  async deployResources(deploymentName: string, resources: BpmnResource[]): Promise<DeploymentResult> {
    if (resources.length === 0) throw new EngineError("invalid", `deployment "${deploymentName}" has no resources`);
    const form = new FormData();
    form.set("deployment-name", deploymentName);
    form.set("enable-duplicate-filtering", "true");
    form.set("deploy-changed-only", "true");
    form.set("deployment-source", this.deploymentSource);
    for (const [index, resource] of resources.entries()) {
      // The part name is irrelevant to the engine; the file name is the resource's name in the deployment.
      form.set(`resource-${index}`, new Blob([resource.content], { type: "application/xml" }), resource.name);
    }
    const answer = await this.client.postForm<DeploymentWithDefinitionsDto>("/deployment/create", form);
    return {
      deploymentId: answer.id,
      deployedProcessDefinitions: Object.values(answer.deployedProcessDefinitions ?? {}).map(({ id, key, version }) => ({ id, key, version })),
    };
  }

  subscribe(topic: string, handler: ExternalTaskHandler, options: TopicOptions = {}): void {
    if (this.stopped) throw new Error(`OperatonEngine: cannot subscribe to "${topic}" after stop()`);
    this.worker.subscribe(topic, options, handler);
  }

  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    this.worker.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.worker.stop();
  }

  /** Counts of the external-task worker (fetched, completed, failed, …). */
  workerStatus(): ExternalTaskStats {
    return this.worker.status();
  }
}
