// What the engine connector's parts (tasks.ts, processes.ts) share: the connector's settings, engine adapter and
// state, the way to the pool (commands with ids, reads of the event store), error bookkeeping, and the batch of
// shadows one page collects. The connector (connector.ts) provides it; a test can provide its own.
import type { CommandResult } from "../../domain/decider.ts";
import type { ActionCall, ActionParams, CommandName } from "../../lib/actions.ts";
import type { ConnectorState, InstanceShadow, TaskShadow } from "./connector-state.ts";
import type { EngineAdapter } from "./engine-adapter.ts";
import type { EngineConnectorSettings } from "./settings.ts";
import type { Failure } from "./support.ts";

/** The messages the connector logs. */
export interface ConnectorLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Sends a command to the pool (with an id, when given) and answers with its result. */
export type SendCommand = <A extends CommandName>(action: A, params: ActionParams<A>, commandId?: string) => Promise<CommandResult>;

/** What the pool answers to a command. */
export type { CommandResult };

/** Shadows collected while handling one page, written together at its end. */
export interface ShadowBatch {
  tasks: Map<string, TaskShadow>;
  instances: Map<string, InstanceShadow>;
}

export function newBatch(): ShadowBatch {
  return { tasks: new Map(), instances: new Map() };
}

export interface SyncContext {
  readonly app: string;
  readonly settings: EngineConnectorSettings;
  readonly adapter: EngineAdapter;
  readonly logger: ConnectorLogger;
  /** Only these process definition keys (null: all). */
  readonly keys: string[] | null;
  /** The connector's state; throws while it is not started. */
  state(): ConnectorState;
  isStopping(): boolean;
  /** Calls an action of the platform (a read of the event store). */
  call: ActionCall;
  /** Sends a command to the pool (with an id, when given), counting it. */
  send: SendCommand;
  commandId(...parts: (string | number)[]): string;
  recordError(where: string, err: unknown): void;
  /** Records permanent rejections and throws the first other failure. */
  throwTransient(failures: readonly Failure<unknown>[], where: string): void;
  /** Writes the shadows of a batch and empties it. */
  flush(batch: ShadowBatch): Promise<void>;
}
