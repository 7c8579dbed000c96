// Type declarations for camunda-external-task-client-js 3.1.0 (ESM), written from its source
// (lib/Client.js, lib/TaskService.js, lib/Variables.js, lib/__internal/EngineError.js). The published
// @types package describes 1.3 and lacks the interceptors, `lock`, `sorting`, File and the ESM entry.
declare module "camunda-external-task-client-js" {
  import type { EventEmitter } from "node:events";

  export interface TypedValue {
    type: string;
    value: unknown;
    valueInfo?: Record<string, unknown>;
  }

  /** A request option transformer (got options in, got options out). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the library passes its request config through untyped
  export type Interceptor = (config: Record<string, any>) => Record<string, any>;

  export interface ClientOptions {
    baseUrl: string;
    /** Default "some-random-id": always set a unique one. */
    workerId?: string;
    maxTasks?: number;
    maxParallelExecutions?: number;
    /** Pause between two fetchAndLock calls, ms (default 300). */
    interval?: number;
    /** Default lock, ms (default 50,000). */
    lockDuration?: number;
    /** Start polling in the constructor (default true). */
    autoPoll?: boolean;
    /** Long polling: the engine holds fetchAndLock open up to this many ms while there is no task. */
    asyncResponseTimeout?: number;
    usePriority?: boolean;
    interceptors?: Interceptor | Interceptor[];
    use?: ((client: Client) => void) | ((client: Client) => void)[];
    sorting?: { sortBy: "createTime"; sortOrder: "asc" | "desc" }[];
  }

  export interface SubscribeOptions {
    lockDuration?: number;
    variables?: string[];
    businessKey?: string;
    processDefinitionId?: string;
    processDefinitionIdIn?: string[];
    processDefinitionKey?: string;
    processDefinitionKeyIn?: string[];
    processDefinitionVersionTag?: string;
    processVariables?: Record<string, unknown>;
    tenantIdIn?: string[];
    withoutTenantId?: boolean;
    localVariables?: boolean;
    includeExtensionProperties?: boolean;
  }

  export class Variables {
    constructor(initialVariables?: Record<string, TypedValue>, options?: { readOnly?: boolean; processInstanceId?: string; engineService?: unknown });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a process variable's value, of whatever type the engine holds
    get(name: string): any;
    getTyped(name: string): TypedValue | undefined;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the same, for every variable
    getAll(): Record<string, any>;
    getAllTyped(): Record<string, TypedValue>;
    getDirtyVariables(): Record<string, TypedValue>;
    set(name: string, value: unknown): this;
    setTyped(name: string, typedValue: TypedValue): this;
    setAll(values: Record<string, unknown>): this;
    setAllTyped(values: Record<string, TypedValue>): this;
    setTransient(name: string, value: unknown): this;
  }

  export class File {
    constructor(options: { localPath?: string; remotePath?: string; typedValue?: TypedValue; filename?: string; encoding?: string; mimetype?: string; engineService?: unknown });
    load(): Promise<this>;
    content: Buffer | string;
    filename?: string;
  }

  export interface Task {
    id: string;
    topicName: string;
    workerId: string;
    activityId: string;
    activityInstanceId: string;
    processInstanceId: string;
    processDefinitionId: string;
    processDefinitionKey: string;
    processDefinitionVersionTag: string | null;
    executionId: string;
    businessKey: string | null;
    tenantId: string | null;
    retries: number | null;
    errorMessage: string | null;
    errorDetails: string | null;
    lockExpirationTime: string;
    priority: number;
    extensionProperties?: Record<string, string>;
    variables: Variables;
  }

  export interface HandleFailureOptions {
    errorMessage?: string;
    errorDetails?: string;
    /** Remaining retries; 0 raises an incident. */
    retries?: number;
    /** Ms until the task can be fetched again. */
    retryTimeout?: number;
  }

  export interface TaskService {
    complete(task: Task | string, processVariables?: Variables, localVariables?: Variables): Promise<void>;
    handleFailure(task: Task | string, options?: HandleFailureOptions): Promise<void>;
    handleBpmnError(task: Task | string, errorCode: string, errorMessage?: string, variables?: Variables): Promise<void>;
    extendLock(task: Task | string, newDuration: number): Promise<void>;
    lock(task: Task | string, duration: number): Promise<void>;
    unlock(task: Task | string): Promise<void>;
  }

  export type Handler = (args: { task: Task; taskService: TaskService }) => void | Promise<void>;

  export interface TopicSubscription extends SubscribeOptions {
    handler: Handler;
    lockDuration: number;
    unsubscribe(): void;
  }

  /** Thrown (and emitted) for non-2xx answers of the engine. */
  export interface EngineError extends Error {
    httpStatusCode: number;
    code: number | null;
    type: string | undefined;
    engineMsg: string | undefined;
  }

  export class Client extends EventEmitter {
    static readonly SortBy: { readonly CreateTime: "createTime" };
    static readonly SortOrder: { readonly ASC: "asc"; readonly DESC: "desc" };
    constructor(options: ClientOptions);
    readonly options: ClientOptions;
    readonly taskService: TaskService;
    start(): void;
    stop(): void;
    poll(): Promise<void>;
    subscribe(topic: string, handler: Handler): TopicSubscription;
    subscribe(topic: string, options: SubscribeOptions | null, handler: Handler): TopicSubscription;
  }

  export const BasicAuthInterceptor: { new (options: { username: string; password: string }): Interceptor };
  export const KeycloakAuthInterceptor: {
    new (options: { tokenEndpoint: string; clientId: string; clientSecret: string; cacheOffset?: number }): Interceptor;
  };
  export function logger(client: Client): void;
  export namespace logger {
    function level(level: "error" | "warn" | "info" | "verbose" | "debug" | "silly"): (client: Client) => void;
    function success(text: string): string;
    function error(text: string): string;
  }
}
