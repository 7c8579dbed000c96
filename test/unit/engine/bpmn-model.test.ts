// The one BPMN parser (engine/bpmn-model.ts, bpmn-moddle + camunda-bpmn-moddle): what it derives from the model of
// the repository's BPMN and of small documents — process attributes for the start menu, start form keys,
// documentation, the Operaton namespace read as the Camunda one — and the embedded engine's description of a
// resource (warnings, serialized sources) built on the same single parse.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BPMN_FILE, PROCESS_KEY, starters } from "../../../apps/approval/process.ts";
import { nameList, parseBpmn, processAttributesOf, readProcessAttributes } from "../../../engine/bpmn-model.ts";
import { describeResource, InstanceRun } from "../../../engine/embedded/bpmn-runtime.ts";

const BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const approvalXml = readFileSync(BPMN_FILE, "utf8");

describe("BPMN model", () => {
  it("reads the example process: attributes, start form key, documentation", async () => {
    const model = await parseBpmn(approvalXml);
    expect(model.context.rootElement.$type).toBe("bpmn:Definitions");
    expect(model.processes).toHaveLength(1);
    const { element, ...process } = model.processes[0]!;
    expect(process).toEqual({
      id: PROCESS_KEY,
      name: "Request Approval",
      executable: true,
      description: "A request (subject, amount, applicant) is approved, rejected or returned to its originator for amendment.",
      versionTag: "1",
      candidateStarterUsers: [],
      candidateStarterGroups: ["avengers", "muppetshow"],
      startableInTasklist: true,
      startFormKey: "start-approval",
    });
    expect(element.flowElements?.find((e) => e.id === "user_approve_request")).toMatchObject({
      $type: "bpmn:UserTask",
      formKey: "approve-request",
      candidateUsers: "fozzy,gonzo",
      candidateGroups: "muppetshow",
      dueDate: "${approvalDueDate}",
      priority: "23",
    });
    expect(element.flowElements?.find((e) => e.id === "user_amend_request")).toMatchObject({ formKey: "amend-request", assignee: "${originator}" });
    await expect(starters()).resolves.toEqual({ users: [], groups: ["avengers", "muppetshow"] });
  });

  it("describes the example process for the embedded engine from one parse: no warnings, a source where it runs", async () => {
    const model = await parseBpmn(approvalXml);
    const [described] = await describeResource(model);
    expect(described).toMatchObject({ key: PROCESS_KEY, name: "Request Approval", executable: true, startFormKey: "start-approval", versionTag: "1", warnings: [] });
    const source = JSON.parse(described!.serializedSource!) as { processes: { id: string }[] };
    expect(source.processes.map((p) => p.id)).toEqual([PROCESS_KEY]);
  });

  it("reads candidate starters and the tasklist flag in the camunda namespace", async () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="${BPMN}" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
  <bpmn:process id="approve" name="Request &amp; Approval" isExecutable="true"
      camunda:candidateStarterGroups="muppetshow, avengers" camunda:candidateStarterUsers="kermit" camunda:versionTag="1.2">
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>`;
    expect(await processAttributesOf(xml, "approve")).toEqual({
      id: "approve",
      name: "Request & Approval",
      candidateStarterUsers: ["kermit"],
      candidateStarterGroups: ["avengers", "muppetshow"],
      startableInTasklist: true,
      versionTag: "1.2",
    });
    expect(await processAttributesOf(xml, "other")).toBeNull();
  });

  it("reads the operaton namespace under any prefix, a default BPMN namespace, and the isStartableInTasklist flag", async () => {
    const xml = `<definitions xmlns="${BPMN}" xmlns:op="http://operaton.org/schema/1.0/bpmn">
  <process id="one" op:candidateStarterUsers="a,b" op:isStartableInTasklist="false"><startEvent id="s" op:formKey="one-form"/></process>
  <process id='two' op:candidateStarterGroups='g'></process>
</definitions>`;
    expect((await readProcessAttributes(xml)).map((p) => [p.id, p.candidateStarterUsers, p.candidateStarterGroups, p.startableInTasklist])).toEqual([
      ["one", ["a", "b"], [], false],
      ["two", [], ["g"], true],
    ]);
    expect((await parseBpmn(xml)).processes.map((p) => [p.id, p.executable, p.startFormKey])).toEqual([
      ["one", false, "one-form"],
      ["two", false, null],
    ]);
  });

  it("ignores attributes of other namespaces, commented-out processes and markup inside CDATA", async () => {
    const xml = `<bpmn:definitions xmlns:bpmn="${BPMN}" xmlns:other="urn:other" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
  <!-- <bpmn:process id="ghost" camunda:candidateStarterUsers="nobody"/> -->
  <bpmn:process id="real" other:candidateStarterUsers="spoof" camunda:candidateStarterUsers="\${initiator}, kermit">
    <bpmn:documentation><![CDATA[<bpmn:process id="inCdata"/>]]></bpmn:documentation>
  </bpmn:process>
</bpmn:definitions>`;
    const processes = await readProcessAttributes(xml);
    expect(processes.map((p) => p.id)).toEqual(["real"]);
    expect(processes[0]!.candidateStarterUsers).toEqual(["kermit"]);
    expect((await parseBpmn(xml)).processes[0]!.description).toBe('<bpmn:process id="inCdata"/>');
    expect(await processAttributesOf(xml, "ghost")).toBeNull();
    expect(await processAttributesOf(xml, "inCdata")).toBeNull();
  });

  it("honours a namespace declared on an inner element only inside it", async () => {
    const xml = `<bpmn:definitions xmlns:bpmn="${BPMN}">
  <bpmn:process id="inner" xmlns:c="http://camunda.org/schema/1.0/bpmn" c:candidateStarterGroups="g1"/>
  <bpmn:process id="outer" xmlns:x="urn:x" x:candidateStarterGroups="g2"/>
</bpmn:definitions>`;
    expect((await readProcessAttributes(xml)).map((p) => [p.id, p.candidateStarterGroups])).toEqual([
      ["inner", ["g1"]],
      ["outer", []],
    ]);
  });

  it("takes the start form key from a start event only, not from one inside an event sub-process or a task", async () => {
    const xml = `<bpmn:definitions xmlns:bpmn="${BPMN}" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:userTask id="t" camunda:formKey="task-form"/>
    <bpmn:subProcess id="events" triggeredByEvent="true"><bpmn:startEvent id="inner" camunda:formKey="inner-form"/></bpmn:subProcess>
  </bpmn:process>
</bpmn:definitions>`;
    expect((await parseBpmn(xml)).processes[0]!.startFormKey).toBeNull();
  });

  it("rejects what is not BPMN; the start menu's reader says null", async () => {
    await expect(parseBpmn("<not-bpmn")).rejects.toThrow();
    await expect(parseBpmn("<root/>")).rejects.toThrow();
    expect(await processAttributesOf("<root/>", "x")).toBeNull();
  });

  it("splits name lists: trimmed, unique, sorted, expressions left out", () => {
    expect(nameList(" b, a ,,a, #{x}, ${y} ")).toEqual(["a", "b"]);
    expect(nameList(undefined)).toEqual([]);
  });
});

describe("embedded engine on the model", () => {
  it("warns of what it cannot run as Camunda would", async () => {
    const xml = `<bpmn:definitions xmlns:bpmn="${BPMN}" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="timerStart"><bpmn:timerEventDefinition/></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="timerStart" targetRef="java"/>
    <bpmn:serviceTask id="java" camunda:class="org.example.Delegate"/>
    <bpmn:sequenceFlow id="f2" sourceRef="java" targetRef="script"/>
    <bpmn:scriptTask id="script"/>
    <bpmn:sequenceFlow id="f3" sourceRef="script" targetRef="external"/>
    <bpmn:serviceTask id="external" camunda:type="external" camunda:topic="t"/>
    <bpmn:sequenceFlow id="f4" sourceRef="external" targetRef="receive"/>
    <bpmn:receiveTask id="receive"/>
    <bpmn:sequenceFlow id="f5" sourceRef="receive" targetRef="catch"/>
    <bpmn:intermediateCatchEvent id="catch"><bpmn:messageEventDefinition/></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f6" sourceRef="catch" targetRef="call"/>
    <bpmn:callActivity id="call"/>
  </bpmn:process>
</bpmn:definitions>`;
    const [described] = await describeResource(xml);
    expect(described!.warnings).toEqual([
      "timerStart: timers are not kept across steps by the embedded engine",
      "timerStart: message, signal and timer events cannot be waited on or started by in the embedded engine",
      'java: only external service tasks (camunda:type="external") run in the embedded engine',
      "script: script tasks do not run in the embedded engine",
      "receive: only user tasks and external tasks can be waited on in the embedded engine",
      "catch: message, signal and timer events cannot be waited on or started by in the embedded engine",
      "call: sub-processes and call activities are not supported by the embedded engine",
    ]);
  });

  it("runs a process written in the operaton namespace: its user task's attributes and input parameters are read", async () => {
    const xml = `<bpmn:definitions xmlns:bpmn="${BPMN}" xmlns:operaton="http://operaton.org/schema/1.0/bpmn">
  <bpmn:process id="op" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:userTask id="task" operaton:assignee="\${originator}" operaton:candidateGroups="muppetshow" operaton:formKey="op-form">
      <bpmn:extensionElements><operaton:inputOutput><operaton:inputParameter name="mood">happy</operaton:inputParameter></operaton:inputOutput></bpmn:extensionElements>
    </bpmn:userTask>
  </bpmn:process>
</bpmn:definitions>`;
    const run = await InstanceRun.start("op-1", xml, "op", { originator: "kermit" });
    try {
      const [waiting] = run.waiting();
      expect(waiting).toMatchObject({ activityId: "task", kind: "userTask", behaviour: { assignee: "${originator}", candidateGroups: "muppetshow", formKey: "op-form" } });
      const io = waiting!.behaviour.extensionElements?.values?.find((value) => value.$type === "camunda:InputOutput");
      expect(io?.inputParameters?.map((parameter) => [parameter.name, parameter.value])).toEqual([["mood", "happy"]]);
    } finally {
      await run.dispose();
    }
  });
});
