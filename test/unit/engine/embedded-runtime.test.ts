// The embedded engine's bpmn-engine glue (engine/embedded/bpmn-runtime.ts), in memory, no database: steps
// that start, save, recover and signal an instance, the external task behaviour (wait, signal, BPMN error),
// Camunda-style conditions, manual tasks passing through, and only the started process of a definition running.
import { describe, expect, it } from "vitest";
import { describeResource, InstanceRun } from "../../../engine/embedded/bpmn-runtime.ts";

const NS = `xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`;

const xml = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions ${NS} id="d" targetNamespace="x">
  <bpmn:error id="rejected" errorCode="REJECTED"/>
  <bpmn:process id="main" name="Main" isExecutable="true">
    <bpmn:documentation>The main process.</bpmn:documentation>
    <bpmn:startEvent id="start" camunda:formKey="start-form"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:serviceTask id="work" camunda:type="external" camunda:topic="work"/>
    <bpmn:boundaryEvent id="onRejected" attachedToRef="work"><bpmn:errorEventDefinition errorRef="rejected"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_rej" sourceRef="onRejected" targetRef="end_rejected"/>
    <bpmn:endEvent id="end_rejected"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="manual"/>
    <bpmn:manualTask id="manual"/>
    <bpmn:sequenceFlow id="f3" sourceRef="manual" targetRef="decide"/>
    <bpmn:userTask id="decide" camunda:assignee="\${originator}"/>
    <bpmn:sequenceFlow id="f4" sourceRef="decide" targetRef="gw"/>
    <bpmn:exclusiveGateway id="gw"/>
    <bpmn:sequenceFlow id="f_yes" sourceRef="gw" targetRef="end_yes"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">\${amount > 100 &amp;&amp; decision == "yes"}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="end_no"><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">#{not (amount > 100 and decision eq 'yes')}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:endEvent id="end_yes"/>
    <bpmn:endEvent id="end_no"/>
  </bpmn:process>
  <bpmn:process id="other" isExecutable="true">
    <bpmn:startEvent id="other_start"/>
    <bpmn:sequenceFlow id="g1" sourceRef="other_start" targetRef="other_task"/>
    <bpmn:userTask id="other_task"/>
  </bpmn:process>
</bpmn:definitions>`;

/** Saves the state and recovers it in a new engine, as a step after a restart would. */
async function again(run: InstanceRun, serializedSource: string): Promise<InstanceRun> {
  const state = JSON.parse(JSON.stringify(await run.state()));
  await run.dispose();
  return InstanceRun.recover(state, serializedSource, "main");
}

describe("embedded engine runtime", () => {
  it("describes a resource's processes, each with a source where only it runs", async () => {
    const processes = await describeResource(xml);
    expect(processes.map((p) => [p.key, p.name, p.description, p.executable, p.startFormKey, p.warnings])).toEqual([
      ["main", "Main", "The main process.", true, "start-form", []],
      ["other", null, null, true, null, []],
    ]);
    const source = JSON.parse(processes[0]!.serializedSource!) as { processes: { id: string; behaviour: { isExecutable: boolean } }[] };
    expect(source.processes.map((p) => [p.id, p.behaviour.isExecutable])).toEqual([
      ["main", true],
      ["other", false],
    ]);
    await expect(describeResource("<not-bpmn")).rejects.toThrow();
  });

  it("runs steps: waits at the external task, survives save and recovery, passes the manual task, decides with the variables", async () => {
    const [main] = await describeResource(xml);
    let run = await InstanceRun.start("i1", xml, "main", { originator: "kermit", amount: 500 });
    expect(run.outcome).toBe("waiting");
    expect(run.startActivityId).toBe("start");
    // Only the started process runs: no task of `other`.
    const [work] = run.waiting();
    expect(run.waiting()).toHaveLength(1);
    expect(work).toMatchObject({ activityId: "work", kind: "externalTask", behaviour: { topic: "work" } });

    run = await again(run, main!.serializedSource!);
    expect(run.waiting().map((w) => w.executionId)).toEqual([work!.executionId]);
    run.setVariables({ loaded: true });
    await run.signal(work!.executionId);
    const [decide] = run.waiting();
    expect(decide).toMatchObject({ activityId: "decide", kind: "userTask", behaviour: { assignee: "${originator}" } });

    run = await again(run, main!.serializedSource!);
    expect(run.variables()).toEqual({ originator: "kermit", amount: 500, loaded: true });
    run.setVariables({ decision: "yes" });
    await run.signal(decide!.executionId);
    expect(run.outcome).toBe("completed");
    expect(run.waiting()).toEqual([]);
    await run.dispose();
  });

  it("fails a step whose condition cannot be evaluated, and takes a caught BPMN error's path", async () => {
    const [main] = await describeResource(xml);
    let run = await InstanceRun.start("i2", xml, "main", { originator: "kermit", amount: 500 });
    const [work] = run.waiting();
    await run.signal(work!.executionId);
    const [decide] = run.waiting();
    // `decision` is not set (and `amount > 100` does not cut the conditions short): they cannot be evaluated.
    await run.signal(decide!.executionId);
    expect(run.outcome).toBe("failed");
    expect(run.error?.message).toMatch(/decision/);
    await run.dispose();

    run = await InstanceRun.start("i3", xml, "main", { originator: "kermit", amount: 5 });
    run = await again(run, main!.serializedSource!);
    await run.throwError(run.waiting()[0]!.executionId, "REJECTED", "no");
    expect(run.outcome).toBe("completed");
    await run.dispose();
  });
});
