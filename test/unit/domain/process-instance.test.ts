import { describe, expect, it } from "vitest";
import * as harness from "../../decider-harness.ts";
import { DomainError } from "../../../domain/decider.ts";
import {
  processInstanceDecider as decider,
  processInstanceStreamId,
  type ProcessInstanceCommand,
  type ProcessInstanceEvent,
  type ProcessInstanceState,
} from "../../../domain/process-instance.ts";
import type { SourceReference } from "../../../domain/types.ts";


const stateAfter = (events: ProcessInstanceEvent[]): ProcessInstanceState => harness.stateAfter(decider, events);
const run = (...commands: ProcessInstanceCommand[]): ProcessInstanceEvent[] => harness.decideAll(decider, commands);


const ref: SourceReference = {
  type: "process",
  instanceId: "pi-1",
  executionId: "pi-1",
  definitionId: "approve:1:42",
  definitionKey: "approve",
  name: "Approve request",
  applicationName: "approval-app",
};
const normalizedRef = { ...ref, tenantId: null };
const base = { processInstanceId: "pi-1", sourceReference: ref };

const start: ProcessInstanceCommand = { type: "StartProcessInstance", ...base, businessKey: "BK-1", startUserId: "kermit", startActivityId: "start" };
const finish: ProcessInstanceCommand = { type: "FinishProcessInstance", ...base, endActivityId: "end" };
const cancel: ProcessInstanceCommand = { type: "CancelProcessInstance", ...base, endActivityId: "task_a", deleteReason: "withdrawn" };
const suspend: ProcessInstanceCommand = { type: "SuspendProcessInstance", ...base };
const resume: ProcessInstanceCommand = { type: "ResumeProcessInstance", ...base };

const types = (events: ProcessInstanceEvent[]) => events.map((e) => e.type);

describe("process instance", () => {
  it("stream id", () => {
    expect(processInstanceStreamId("pi-1")).toBe("processInstance-pi-1");
  });

  it("start emits ProcessInstanceStarted with every field explicit", () => {
    expect(run({ type: "StartProcessInstance", ...base })).toEqual([
      {
        type: "ProcessInstanceStarted",
        data: {
          processInstanceId: "pi-1",
          sourceReference: normalizedRef,
          businessKey: null,
          startUserId: null,
          superInstanceId: null,
          startActivityId: null,
        },
      },
    ]);
  });

  it("start of an existing instance yields nothing, whatever its state", () => {
    expect(types(run(start, start))).toEqual(["ProcessInstanceStarted"]);
    expect(types(run(start, suspend, start))).toEqual(["ProcessInstanceStarted", "ProcessInstanceSuspended"]);
    expect(types(run(start, finish, start))).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
  });

  it.each([finish, cancel, suspend, resume].map((c) => [c.type, c] as const))("%s of an unknown instance → NOT_FOUND", (_n, command) => {
    let error: unknown;
    try {
      decider.decide(command, decider.initialState);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).kind).toBe("NOT_FOUND");
    expect((error as DomainError).details).toEqual({ aggregate: "processInstance", id: "pi-1" });
  });

  it.each([
    ["finished", finish],
    ["cancelled", cancel],
  ] as const)("every command on a %s instance yields nothing", (_n, end) => {
    for (const command of [finish, cancel, suspend, resume, start]) {
      expect(run(start, end, command)).toHaveLength(2);
    }
  });

  it("finish works from RUNNING and from SUSPENDED", () => {
    expect(types(run(start, finish))).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
    expect(types(run(start, suspend, finish))).toEqual(["ProcessInstanceStarted", "ProcessInstanceSuspended", "ProcessInstanceFinished"]);
  });

  it("cancel works from RUNNING and from SUSPENDED", () => {
    expect(types(run(start, cancel))).toEqual(["ProcessInstanceStarted", "ProcessInstanceCancelled"]);
    expect(types(run(start, suspend, cancel))).toEqual(["ProcessInstanceStarted", "ProcessInstanceSuspended", "ProcessInstanceCancelled"]);
  });

  it("suspend when suspended yields nothing; resume when running yields nothing", () => {
    expect(types(run(start, resume))).toEqual(["ProcessInstanceStarted"]);
    expect(types(run(start, suspend, suspend))).toEqual(["ProcessInstanceStarted", "ProcessInstanceSuspended"]);
    expect(types(run(start, suspend, resume, resume, suspend))).toEqual([
      "ProcessInstanceStarted",
      "ProcessInstanceSuspended",
      "ProcessInstanceResumed",
      "ProcessInstanceSuspended",
    ]);
  });

  it("finish and cancel carry their fields, absent ones as null", () => {
    expect(run(start, finish).at(-1)).toEqual({
      type: "ProcessInstanceFinished",
      data: { processInstanceId: "pi-1", sourceReference: normalizedRef, businessKey: null, superInstanceId: null, endActivityId: "end" },
    });
    expect(run(start, cancel).at(-1)).toEqual({
      type: "ProcessInstanceCancelled",
      data: {
        processInstanceId: "pi-1",
        sourceReference: normalizedRef,
        businessKey: null,
        superInstanceId: null,
        endActivityId: "task_a",
        deleteReason: "withdrawn",
      },
    });
    expect(run(start, suspend).at(-1)).toEqual({ type: "ProcessInstanceSuspended", data: { processInstanceId: "pi-1", sourceReference: normalizedRef } });
  });

  describe("evolve", () => {
    it("starts RUNNING with the start data", () => {
      expect(decider.initialState).toEqual({ status: "initial", instance: null });
      expect(stateAfter(run(start))).toEqual({
        status: "RUNNING",
        instance: {
          processInstanceId: "pi-1",
          sourceReference: normalizedRef,
          businessKey: "BK-1",
          startUserId: "kermit",
          superInstanceId: null,
          startActivityId: "start",
          endActivityId: null,
          deleteReason: null,
        },
      });
    });

    it("suspend and resume switch the status and keep the instance", () => {
      const running = stateAfter(run(start));
      const suspended = stateAfter(run(start, suspend));
      expect(suspended).toEqual({ status: "SUSPENDED", instance: running.instance });
      expect(stateAfter(run(start, suspend, resume))).toEqual(running);
    });

    it("finish records the end and keeps what the end report lacks", () => {
      expect(stateAfter(run(start, finish))).toEqual({
        status: "FINISHED",
        instance: { ...stateAfter(run(start)).instance, endActivityId: "end" },
      });
      const withKey = stateAfter(run(start, { ...finish, businessKey: "BK-2", superInstanceId: "parent" }));
      expect(withKey.instance).toMatchObject({ businessKey: "BK-2", superInstanceId: "parent" });
    });

    it("cancel records the end activity and the reason", () => {
      expect(stateAfter(run(start, cancel))).toEqual({
        status: "CANCELLED",
        instance: { ...stateAfter(run(start)).instance, endActivityId: "task_a", deleteReason: "withdrawn" },
      });
    });

    it("ignores events of a stream that lacks its start", () => {
      const initial = decider.initialState;
      expect(decider.evolve(initial, { type: "ProcessInstanceSuspended", data: { processInstanceId: "x", sourceReference: normalizedRef } })).toBe(
        initial,
      );
    });
  });
});
