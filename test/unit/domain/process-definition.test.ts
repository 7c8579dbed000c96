import { describe, expect, it } from "vitest";
import * as harness from "../../decider-harness.ts";
import { DomainError } from "../../../domain/decider.ts";
import {
  processDefinitionDecider as decider,
  processDefinitionStreamId,
  type ProcessDefinitionEvent,
  type ProcessDefinitionState,
  type RegisterProcessDefinition,
  type ReportProcessStartRefused,
  type RequestProcessStart,
  START_WINDOW,
  startRequestOf,
} from "../../../domain/process-definition.ts";
import { domainUpcasters } from "../../../domain/upcasters.ts";
import { eventSchemaVersion } from "../../../domain/events.ts";


const stateAfter = (...events: ProcessDefinitionEvent[]): ProcessDefinitionState => harness.stateAfter(decider, events);
const decideAfter = (history: ProcessDefinitionEvent[], command: RegisterProcessDefinition | RequestProcessStart | ReportProcessStartRefused) => harness.decideAfter(decider, history, command);


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
    startsThroughForm: false,
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
    expect(decider.initialState).toEqual({ status: "initial", definition: null, starts: [] });
    expect(stateAfter(registered)).toEqual({ status: "registered", definition: registered.data, starts: [] });
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

  it("a start request is remembered; the same request again yields nothing, another one an event", () => {
    const [event] = decideAfter([registered], requestStart);
    expect(startRequestOf(stateAfter(registered, event!), "req-1")).toEqual({ requestId: "req-1", requestedBy: "kermit", status: "requested", reason: null });
    expect(stateAfter(registered, event!).definition).toEqual(registered.data);
    expect(decideAfter([registered, event!], requestStart)).toEqual([]);
    expect(decideAfter([registered, event!], { ...requestStart, requestId: "req-2" })).toHaveLength(1);
  });

  describe("start form", () => {
    const withForm = { ...register, formKey: "start-approval" };
    const registeredWithForm = decideAfter([], withForm)[0]!;

    it("given a start form and nothing said, when registered, then it starts through the form", () => {
      expect(registeredWithForm.data).toMatchObject({ formKey: "start-approval", startsThroughForm: true });
    });

    it("given a start form, when registered as startable directly, then it is recorded so", () => {
      expect(decideAfter([], { ...withForm, startsThroughForm: false })[0]!.data).toMatchObject({ formKey: "start-approval", startsThroughForm: false });
    });

    it("given no start form, when registered, then it starts directly; saying so explicitly changes nothing", () => {
      expect(registered.data).toMatchObject({ startsThroughForm: false });
      expect(decideAfter([registered], { ...register, startsThroughForm: false })).toEqual([]);
      expect(decideAfter([registered], { ...register, startsThroughForm: true })[0]!.data).toMatchObject({ startsThroughForm: true });
    });

    it("given a definition that starts through its form, when started directly, then CONFLICT naming the form", () => {
      let error: unknown;
      try {
        decider.decide(requestStart, stateAfter(registeredWithForm));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(DomainError);
      expect((error as DomainError).kind).toBe("CONFLICT");
      expect((error as DomainError).message).toBe('Approve request (approve) starts through its start form "start-approval": open the form to start it');
      expect((error as DomainError).details).toMatchObject({ startsThroughForm: true });
    });

    it("upcasts a version 1 registration: a form key means it starts through the form", () => {
      expect(eventSchemaVersion("ProcessDefinitionRegistered")).toBe(2);
      const { startsThroughForm: _s, ...v1 } = registeredWithForm.data as unknown as Record<string, unknown>;
      expect(domainUpcasters.upcast("ProcessDefinitionRegistered", 1, v1 as never)).toEqual({ schemaVersion: 2, data: registeredWithForm.data });
      const { startsThroughForm: _t, ...v1WithoutForm } = registered.data as unknown as Record<string, unknown>;
      expect(domainUpcasters.upcast("ProcessDefinitionRegistered", 1, v1WithoutForm as never).data).toEqual(registered.data);
    });
  });

  describe("refused start", () => {
    const requested = decideAfter([registered], requestStart)[0]!;
    const refuse: ReportProcessStartRefused = {
      type: "ReportProcessStartRefused",
      processDefinitionId: "approve:3:77",
      requestId: "req-1",
      requestedBy: "kermit",
      reason: "Unknown property used in expression: ${request}",
    };
    const refused: ProcessDefinitionEvent = {
      type: "ProcessStartRefused",
      data: {
        processDefinitionId: "approve:3:77",
        processDefinitionKey: "approve",
        applicationName: "approval-app",
        requestId: "req-1",
        requestedBy: "kermit",
        reason: "Unknown property used in expression: ${request}",
      },
    };

    it("given a start request, when its connector reports a refusal, then ProcessStartRefused names the requester", () => {
      expect(decideAfter([registered, requested], refuse)).toEqual([refused]);
    });

    it("then the request's outcome is refused, with the engine's reason", () => {
      expect(startRequestOf(stateAfter(registered, requested, refused), "req-1")).toEqual({ requestId: "req-1", requestedBy: "kermit", status: "refused", reason: refuse.reason });
    });

    it("given a refused request, when reported again, then nothing", () => {
      expect(decideAfter([registered, requested, refused], refuse)).toEqual([]);
    });

    it("given an unregistered definition, when a refusal is reported, then NOT_FOUND", () => {
      expect(() => decider.decide(refuse, decider.initialState)).toThrow(DomainError);
    });

    it("given a request older than the window, when refused, then the user is still told", () => {
      const many = Array.from({ length: START_WINDOW + 1 }, (_, i) => decideAfter([registered], { ...requestStart, requestId: `many-${i}` })[0]!);
      const state = stateAfter(registered, requested, ...many);
      expect(state.starts).toHaveLength(START_WINDOW);
      expect(startRequestOf(state, "req-1")).toBeNull();
      expect(decider.decide(refuse, state)).toEqual([refused]);
    });
  });
});
