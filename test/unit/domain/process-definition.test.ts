import { describe, expect, it } from "vitest";
import { findNonJson } from "../../../lib/json.ts";
import { DomainError, fold } from "../../../domain/decider.ts";
import {
  processDefinitionDecider as decider,
  processDefinitionStreamId,
  type ProcessDefinitionEvent,
  type ProcessDefinitionState,
  type RegisterProcessDefinition,
  type RequestProcessStart,
} from "../../../domain/process-definition.ts";

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

function stateAfter(...events: ProcessDefinitionEvent[]): ProcessDefinitionState {
  return deepFreeze(fold(decider, deepFreeze(events)));
}

function decideAfter(history: ProcessDefinitionEvent[], command: RegisterProcessDefinition | RequestProcessStart) {
  const events = decider.decide(deepFreeze(command), stateAfter(...history));
  expect(findNonJson(events)).toBeNull();
  return events;
}

const register: RegisterProcessDefinition = {
  type: "RegisterProcessDefinition",
  processDefinitionId: "approve:3:77",
  processDefinitionKey: "approve",
  processDefinitionVersion: 3,
  applicationName: "approval-app",
  processName: "Approve request",
  startableFromTasklist: true,
  candidateStarterUsers: ["piggy", "kermit", "piggy"],
  candidateStarterGroups: ["muppetshow"],
};

const registered: ProcessDefinitionEvent = {
  type: "ProcessDefinitionRegistered",
  data: {
    processDefinitionId: "approve:3:77",
    processDefinitionKey: "approve",
    processDefinitionVersion: 3,
    applicationName: "approval-app",
    processName: "Approve request",
    processVersionTag: null,
    processDescription: null,
    formKey: null,
    startableFromTasklist: true,
    candidateStarterUsers: ["kermit", "piggy"],
    candidateStarterGroups: ["muppetshow"],
  },
};

const requestStart: RequestProcessStart = {
  type: "RequestProcessStart",
  processDefinitionId: "approve:3:77",
  variables: { amount: 100, subject: "Salary" },
  requestedBy: "kermit",
  requestId: "req-1",
};

describe("process definition", () => {
  it("stream id", () => {
    expect(processDefinitionStreamId("approve:3:77")).toBe("processDefinition-approve:3:77");
  });

  it("registers with every field explicit and starter sets sorted and duplicate-free", () => {
    expect(decideAfter([], register)).toEqual([registered]);
  });

  it("carries the optional fields when given", () => {
    const [event] = decideAfter([], { ...register, processVersionTag: "v3", processDescription: "d", formKey: "start-form" });
    expect(event!.data).toMatchObject({ processVersionTag: "v3", processDescription: "d", formKey: "start-form" });
  });

  it("re-registration with identical data yields nothing (starter order and duplicates do not matter)", () => {
    expect(decideAfter([registered], register)).toEqual([]);
    expect(decideAfter([registered], { ...register, candidateStarterUsers: ["kermit", "piggy"], formKey: null })).toEqual([]);
  });

  const changes: [string, Partial<RegisterProcessDefinition>][] = [
    ["processName", { processName: "Approve a request" }],
    ["startableFromTasklist", { startableFromTasklist: false }],
    ["candidateStarterGroups", { candidateStarterGroups: ["avengers"] }],
    ["formKey", { formKey: "start-form" }],
  ];
  it.each(changes)("re-registration with a changed %s registers again", (_name, change) => {
    const events = decideAfter([registered], { ...register, ...change });
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe("ProcessDefinitionRegistered");
    expect(stateAfter(registered, ...events).definition).toMatchObject(change);
  });

  it("evolve: registered holds the definition", () => {
    expect(decider.initialState).toEqual({ status: "initial", definition: null });
    expect(stateAfter(registered)).toEqual({ status: "registered", definition: registered.data });
  });

  it("a start request of an unregistered definition → NOT_FOUND", () => {
    let error: unknown;
    try {
      decider.decide(requestStart, decider.initialState);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).kind).toBe("NOT_FOUND");
    expect((error as DomainError).details).toEqual({ aggregate: "processDefinition", id: "approve:3:77" });
  });

  it("a start request names the key and the owning application for its connector", () => {
    expect(decideAfter([registered], { ...requestStart, businessKey: "BK-9" })).toEqual([
      {
        type: "ProcessStartRequested",
        data: {
          processDefinitionId: "approve:3:77",
          processDefinitionKey: "approve",
          applicationName: "approval-app",
          businessKey: "BK-9",
          variables: { amount: 100, subject: "Salary" },
          requestedBy: "kermit",
          requestId: "req-1",
        },
      },
    ]);
    expect(decideAfter([registered], requestStart)[0]!.data).toMatchObject({ businessKey: null });
  });

  it("a start request does not change the state, and may be repeated", () => {
    const state = stateAfter(registered);
    const [event] = decider.decide(requestStart, state);
    expect(decider.evolve(state, event!)).toBe(state);
    expect(decideAfter([registered, event!], requestStart)).toHaveLength(1);
  });
});
