// The contract every aggregate of the domain follows: a decider turns a command and the current state into
// events, and folds events into state. Deciders are pure: no I/O, no clock, no randomness, so that the same
// stream always yields the same state and the same command always yields the same events.

export interface DomainEvent<T extends string = string, D = unknown> {
  type: T;
  data: D;
}

/** What a command action (mixins/aggregate.mixin.ts) answers. */
export interface CommandResult {
  aggregateId: string;
  /** The aggregate's stream version after the command. */
  version: number;
  /** Global position of the last event of the aggregate (wait for it with a query's minPosition). */
  globalPosition: number;
  /** Types of the events this command appended (empty when the command changed nothing). */
  events: string[];
}

/**
 * The params a command action takes: the command's fields without its `type` (`Defaulted`: those its params schema
 * fills in when absent), and an optional `commandId` that makes it idempotent.
 */
export type CommandInput<C, Defaulted extends keyof C = never> = Omit<C, "type" | Defaulted> & Partial<Pick<C, Defaulted>> & { commandId?: string };

export interface Decider<C extends { type: string }, S, E extends DomainEvent> {
  initialState: S;
  /** Throws DomainError on a rule violation; [] means there is nothing to do (the command is already satisfied). */
  decide(command: C, state: S): E[];
  /** Pure; must not mutate `state`. */
  evolve(state: S, event: E): S;
}

/** NOT_FOUND: the aggregate was never created. CONFLICT: a rule refuses the command (e.g. strict deletion). */
export type DomainErrorKind = "NOT_FOUND" | "CONFLICT";

export class DomainError extends Error {
  // Plain fields rather than parameter properties: Node's type stripping does not support the latter.
  readonly kind: DomainErrorKind;
  readonly details?: Record<string, unknown>;

  constructor(kind: DomainErrorKind, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "DomainError";
    this.kind = kind;
    this.details = details;
  }
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}

/** The state after `events`, starting from the decider's initial state. */
export function fold<S, E>(decider: { initialState: S; evolve(state: S, event: E): S }, events: Iterable<E>): S {
  let state = decider.initialState;
  for (const event of events) state = decider.evolve(state, event);
  return state;
}

/** Makes a `switch` over a union exhaustive: adding a member without handling it fails to compile. */
export function assertNever(value: never, what: string): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify((value as { type?: unknown } | null)?.type ?? value)}`);
}
