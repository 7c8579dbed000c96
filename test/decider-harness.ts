// The given/when/then of every decider test (test/unit/domain, test/unit/engine): commands and histories are
// frozen (a decider must not mutate what it is given), every decision must be plain JSON (events are stored as
// JSON) and must fold (evolve accepts what decide produced).
import { expect } from "vitest";
import { DomainError, fold, type Decider, type DomainEvent } from "../domain/decider.ts";
import { findNonJson } from "../lib/json.ts";

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** Given `history`: the state it folds to (frozen). */
export function stateAfter<C extends { type: string }, S, E extends DomainEvent>(decider: Decider<C, S, E>, history: readonly E[]): S {
  return deepFreeze(fold(decider, deepFreeze([...history])));
}

/** Given `history`, when `command`: the events decided, checked to be plain JSON and to fold. */
export function decideAfter<C extends { type: string }, S, E extends DomainEvent>(decider: Decider<C, S, E>, history: readonly E[], command: C): E[] {
  const events = decider.decide(deepFreeze(command), stateAfter(decider, history));
  expect(findNonJson(events)).toBeNull();
  fold(decider, deepFreeze([...history, ...events]));
  return events;
}

/** The commands one after another, each on the state the previous ones left: every event decided. */
export function decideAll<C extends { type: string }, S, E extends DomainEvent>(decider: Decider<C, S, E>, commands: readonly C[]): E[] {
  const events: E[] = [];
  for (const command of commands) events.push(...decideAfter(decider, events, command));
  return events;
}

/** Then: the DomainError `fn` throws (fails the test when it throws none, or something else). */
export function domainErrorOf(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error("expected a DomainError");
}
