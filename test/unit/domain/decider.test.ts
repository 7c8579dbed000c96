import { describe, expect, it } from "vitest";
import { assertNever, DomainError, fold, isDomainError } from "../../../domain/decider.ts";
import { eventSchemaVersion, eventTypes, isDomainEventType } from "../../../domain/events.ts";
import { domainUpcasters } from "../../../domain/upcasters.ts";
import * as domain from "../../../domain/index.ts";
import { jsonEqual, nameSet, nonEmptyOrNull, normalizeSourceReference, orNull } from "../../../domain/types.ts";

describe("decider contract", () => {
  it("fold applies evolve from the initial state in order", () => {
    const counter = { initialState: "", evolve: (state: string, event: { type: string }) => state + event.type };
    expect(fold(counter, [{ type: "a" }, { type: "b" }])).toBe("ab");
    expect(fold(counter, [])).toBe("");
  });

  it("DomainError carries a kind, a message and details", () => {
    const error = new DomainError("CONFLICT", "no", { id: "x" });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("DomainError");
    expect(error.kind).toBe("CONFLICT");
    expect(error.message).toBe("no");
    expect(error.details).toEqual({ id: "x" });
    expect(isDomainError(error)).toBe(true);
    expect(isDomainError(new Error("x"))).toBe(false);
    expect(new DomainError("NOT_FOUND", "gone").details).toBeUndefined();
  });

  it("assertNever throws when an unexpected value slips through at runtime", () => {
    expect(() => assertNever({ type: "Bogus" } as never, "command")).toThrow(/unhandled command: "Bogus"/);
  });

  it("every decider refuses an unknown command type loudly instead of ignoring it", () => {
    const unknown = { type: "Bogus" } as never;
    expect(() => domain.taskDecider.decide(unknown, domain.fold(domain.taskDecider, [
      { type: "TaskCreated", data: { id: "t" } as never },
    ]))).toThrow(/unhandled/);
    expect(() => domain.dataEntryDecider().decide(unknown, domain.initialDataEntryState)).toThrow(/unhandled/);
    expect(() => domain.processDefinitionDecider.decide(unknown, domain.initialProcessDefinitionState)).toThrow(/unhandled/);
    expect(() => domain.processVariablesDecider.decide(unknown, domain.initialProcessVariablesState)).toThrow(/unhandled/);
  });
});

describe("shared value helpers", () => {
  it("jsonEqual ignores key order and absent-vs-undefined, but not array order", () => {
    expect(jsonEqual({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual({ a: null }, { a: 0 })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
    expect(jsonEqual("1", 1)).toBe(false);
  });

  it("nameSet sorts and removes duplicates", () => {
    expect(nameSet(["b", "a", "b"])).toEqual(["a", "b"]);
    expect(nameSet(undefined)).toEqual([]);
  });

  it("orNull and nonEmptyOrNull make absence explicit", () => {
    expect(orNull(undefined)).toBeNull();
    expect(orNull("")).toBe("");
    expect(orNull(0)).toBe(0);
    expect(nonEmptyOrNull("")).toBeNull();
    expect(nonEmptyOrNull(undefined)).toBeNull();
    expect(nonEmptyOrNull("x")).toBe("x");
  });

  it("normalizeSourceReference makes tenantId explicit", () => {
    const ref = { type: "generic", instanceId: "i", executionId: "e", definitionId: "d", definitionKey: "k", name: "n", applicationName: "a" } as const;
    expect(normalizeSourceReference(ref)).toEqual({ ...ref, tenantId: null });
  });
});

describe("event catalogue", () => {
  it("lists every event type once, grouped per aggregate, each at the version its upcasters lead to", () => {
    expect(Object.keys(eventTypes).sort()).toEqual(["dataEntry", "processDefinition", "processInstance", "processVariables", "task"]);
    const all = Object.values(eventTypes).flat();
    expect(new Set(all.map((e) => e.type)).size).toBe(all.length);
    expect(all).toHaveLength(15 + 4 + 3 + 5 + 1);
    // The event store writes the upcasters' current version: the catalogue must agree with it.
    for (const info of all) expect(info.schemaVersion).toBe(domainUpcasters.currentVersion(info.type));
    expect(eventSchemaVersion("ProcessDefinitionRegistered")).toBe(2);
    expect(eventTypes.task.map((e) => e.type)).toContain("TaskInteractionRefused");
    expect(eventTypes.processInstance.map((e) => e.type)).toContain("ProcessInstanceFinished");
  });

  it("answers the schema version of a known type and nothing for an unknown one", () => {
    expect(eventSchemaVersion("TaskCreated")).toBe(1);
    expect(eventSchemaVersion("ProcessVariablesChanged")).toBe(1);
    expect(eventSchemaVersion("TaskCreatedEngineEvent")).toBeUndefined();
    expect(isDomainEventType("DataEntryAnonymized")).toBe(true);
    expect(isDomainEventType("nope")).toBe(false);
  });
});
