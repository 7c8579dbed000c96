import { describe, expect, it } from "vitest";
import * as harness from "../../decider-harness.ts";
import {
  processVariablesDecider as decider,
  processVariablesStreamId,
  type ProcessVariableChange,
  type ProcessVariableUpsert,
  type ProcessVariablesEvent,
  type ProcessVariablesState,
} from "../../../domain/process-variables.ts";
import type { SourceReference } from "../../../domain/types.ts";


const stateAfter = (events: ProcessVariablesEvent[]): ProcessVariablesState => harness.stateAfter(decider, events);

const ref: SourceReference = {
  type: "process",
  instanceId: "pi-1",
  executionId: "ex-1",
  definitionId: "approve:1:42",
  definitionKey: "approve",
  name: "Approve request",
  applicationName: "approval-app",
};
const normalizedRef = { ...ref, tenantId: null };

function change(...variableChanges: ProcessVariableChange[]) {
  return { type: "ChangeProcessVariables" as const, sourceReference: ref, variableChanges };
}

/** Runs each list of changes as one command; returns all events. */
const run = (...commands: ProcessVariableChange[][]): ProcessVariablesEvent[] => harness.decideAll(decider, commands.map((changes) => change(...changes)));

const upsert = (
  kind: "create" | "update",
  id: string,
  revision: number,
  value: unknown,
  extra: Partial<ProcessVariableUpsert> = {},
): ProcessVariableChange => ({
  kind,
  variableInstanceId: id,
  variableName: `name-${id}`,
  revision,
  scopeActivityInstanceId: "pi-1",
  value: { type: "PRIMITIVE", value: value as never },
  ...extra,
});
const del = (id: string): ProcessVariableChange => ({
  kind: "delete",
  variableInstanceId: id,
  variableName: `name-${id}`,
  scopeActivityInstanceId: "pi-1",
});

/** What the event carries for an upsert: valueType made explicit. */
const recorded = (c: ProcessVariableChange) =>
  c.kind === "delete" ? c : { ...c, value: { ...c.value, valueType: c.value.valueType ?? null } };

describe("process variables", () => {
  it("stream id is the process instance id", () => {
    expect(processVariablesStreamId("pi-1")).toBe("processVariables-pi-1");
  });

  it("works on an unknown instance: the first change creates the stream", () => {
    const c = upsert("create", "v1", 0, "hello");
    expect(run([c])).toEqual([{ type: "ProcessVariablesChanged", data: { sourceReference: normalizedRef, variableChanges: [recorded(c)] } }]);
  });

  it("keeps a TYPED value's type name", () => {
    const c = upsert("create", "v1", 0, "2024-01-01", { value: { type: "TYPED", value: "2024-01-01", valueType: "Date" } });
    expect(run([c])[0]!.data.variableChanges[0]).toEqual(c);
  });

  it("drops an update with the same revision and value as stored", () => {
    expect(run([upsert("create", "v1", 1, { a: 1, b: 2 })], [upsert("update", "v1", 1, { b: 2, a: 1 })])).toHaveLength(1);
  });

  it("drops a repeated create the same way", () => {
    expect(run([upsert("create", "v1", 0, "x")], [upsert("create", "v1", 0, "x")])).toHaveLength(1);
  });

  it("keeps an update with a new revision, even with the same value", () => {
    expect(run([upsert("create", "v1", 0, "x")], [upsert("update", "v1", 1, "x")])).toHaveLength(2);
  });

  it("keeps an update with the same revision but another value", () => {
    expect(run([upsert("create", "v1", 1, "x")], [upsert("update", "v1", 1, "y")])).toHaveLength(2);
  });

  it("drops an update with a lower revision than stored (a late, older report)", () => {
    const events = run([upsert("create", "v1", 3, "new")], [upsert("update", "v1", 2, "old")]);
    expect(events).toHaveLength(1);
    expect(stateAfter(events).variables["v1"]!.value.value).toBe("new");
  });

  it("drops a delete of an unknown variable; yields nothing when nothing remains", () => {
    expect(run([del("nope")])).toEqual([]);
    expect(run([upsert("create", "v1", 0, "x")], [del("nope"), upsert("update", "v1", 0, "x")])).toHaveLength(1);
  });

  it("keeps a delete of a known variable, and a second delete is dropped", () => {
    const events = run([upsert("create", "v1", 0, "x")], [del("v1")], [del("v1")]);
    expect(events).toHaveLength(2);
    expect(events[1]!.data.variableChanges).toEqual([del("v1")]);
  });

  it("keeps only the effective changes of a mixed command, in order", () => {
    const events = run(
      [upsert("create", "v1", 0, "x"), upsert("create", "v2", 0, "y")],
      [upsert("update", "v1", 0, "x"), upsert("update", "v2", 1, "z"), del("gone"), del("v1"), upsert("create", "v3", 0, 3)],
    );
    expect(events[1]!.data.variableChanges).toEqual([upsert("update", "v2", 1, "z"), del("v1"), upsert("create", "v3", 0, 3)].map(recorded));
  });

  it("later changes in one command see earlier ones", () => {
    const events = run([upsert("create", "v1", 0, "x"), upsert("update", "v1", 1, "y"), upsert("update", "v1", 1, "y"), del("v1"), del("v1")]);
    expect(events[0]!.data.variableChanges.map((c) => c.kind)).toEqual(["create", "update", "delete"]);
    expect(stateAfter(events).variables).toEqual({});
  });

  it("evolve keeps the variables keyed by instance id and the latest source reference", () => {
    expect(decider.initialState).toEqual({ sourceReference: null, variables: {} });
    const events = run([upsert("create", "v1", 0, "x"), upsert("create", "v2", 0, { deep: [1, 2] })], [upsert("update", "v1", 1, "y"), del("v2")]);
    expect(stateAfter(events)).toEqual({
      sourceReference: normalizedRef,
      variables: {
        v1: {
          variableInstanceId: "v1",
          variableName: "name-v1",
          revision: 1,
          scopeActivityInstanceId: "pi-1",
          value: { type: "PRIMITIVE", value: "y", valueType: null },
        },
      },
    });
  });

  it("an unchanged report for a known variable is dropped regardless of the valueType spelling", () => {
    const typed = upsert("create", "v1", 0, "x", { value: { type: "PRIMITIVE", value: "x" } });
    expect(run([typed], [{ ...typed, kind: "update", value: { type: "PRIMITIVE", value: "x", valueType: null } } as ProcessVariableChange])).toHaveLength(1);
  });
});
