import { describe, expect, it } from "vitest";
import { nameList, processAttributesOf, readProcessAttributes } from "../../../domain/engine/bpmn-process-attributes.ts";

describe("BPMN process attributes", () => {
  it("reads candidate starters and the tasklist flag in the camunda namespace", () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
  <bpmn:process id="approve" name="Request &amp; Approval" isExecutable="true"
      camunda:candidateStarterGroups="muppetshow, avengers" camunda:candidateStarterUsers="kermit" camunda:versionTag="1.2">
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>`;
    expect(processAttributesOf(xml, "approve")).toEqual({
      id: "approve",
      name: "Request & Approval",
      candidateStarterUsers: ["kermit"],
      candidateStarterGroups: ["avengers", "muppetshow"],
      startableInTasklist: true,
      versionTag: "1.2",
    });
  });

  it("reads the operaton namespace under any prefix, a default BPMN namespace, and the isStartableInTasklist flag", () => {
    const xml = `<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:op="http://operaton.org/schema/1.0/bpmn">
  <process id="one" op:candidateStarterUsers="a,b" op:isStartableInTasklist="false"/>
  <process id='two' op:candidateStarterGroups='g'></process>
</definitions>`;
    expect(readProcessAttributes(xml).map((p) => [p.id, p.candidateStarterUsers, p.candidateStarterGroups, p.startableInTasklist])).toEqual([
      ["one", ["a", "b"], [], false],
      ["two", [], ["g"], true],
    ]);
  });

  it("ignores attributes of other namespaces, commented-out processes and elements that only look like processes", () => {
    const xml = `<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:other="urn:other" xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
  <!-- <bpmn:process id="ghost" camunda:candidateStarterUsers="nobody"/> -->
  <other:process id="foreign" camunda:candidateStarterUsers="x"/>
  <bpmn:process id="real" other:candidateStarterUsers="spoof" camunda:candidateStarterUsers="\${initiator}, kermit">
    <bpmn:documentation><![CDATA[<bpmn:process id="inCdata"/>]]></bpmn:documentation>
  </bpmn:process>
</bpmn:definitions>`;
    const processes = readProcessAttributes(xml);
    expect(processes.map((p) => p.id)).toEqual(["real"]);
    expect(processes[0]!.candidateStarterUsers).toEqual(["kermit"]);
    expect(processAttributesOf(xml, "ghost")).toBeNull();
  });

  it("honours a namespace declared on an inner element only inside it", () => {
    const xml = `<root xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <wrapper xmlns:c="http://camunda.org/schema/1.0/bpmn"><bpmn:process id="inner" c:candidateStarterGroups="g1"/></wrapper>
  <bpmn:process id="outer" c:candidateStarterGroups="g2"/>
</root>`;
    expect(readProcessAttributes(xml).map((p) => [p.id, p.candidateStarterGroups])).toEqual([
      ["inner", ["g1"]],
      ["outer", []],
    ]);
  });

  it("splits name lists: trimmed, unique, sorted, expressions left out", () => {
    expect(nameList(" b, a ,,a, #{x}, ${y} ")).toEqual(["a", "b"]);
    expect(nameList(undefined)).toEqual([]);
  });
});
