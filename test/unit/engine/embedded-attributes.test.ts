import { describe, expect, it } from "vitest";
import {
  AttributeError,
  DEFAULT_PRIORITY,
  dateOf,
  inputParameters,
  isExternalTask,
  namesOf,
  outputParameters,
  userTaskAttributes,
  type ElementBehaviour,
} from "../../../engine/embedded/camunda-attributes.ts";
import { diffVariables, splitByScope } from "../../../engine/embedded/variable-changes.ts";
import { documentationOf } from "../../../engine/bpmn-model.ts";

const NOW = "2026-11-23T10:00:00.000Z";
const variables = { originator: "kermit", approvers: ["gonzo", "fozzie"], group: "muppetshow", due: "2026-12-24T18:00:00+01:00", prio: 80, subject: "Salary" };

describe("user task attributes", () => {
  it("reads plain attributes, with Camunda's defaults", () => {
    const behaviour: ElementBehaviour = { name: "Approve", formKey: "approve-request", candidateUsers: "gonzo, fozzie ,gonzo", candidateGroups: "muppetshow", documentation: [{ text: "Decide." }] };
    expect(userTaskAttributes("approve", behaviour, {}, NOW)).toEqual({
      name: "Approve",
      description: "Decide.",
      formKey: "approve-request",
      assignee: null,
      candidateUsers: ["fozzie", "gonzo"],
      candidateGroups: ["muppetshow"],
      dueDate: null,
      followUpDate: null,
      priority: DEFAULT_PRIORITY,
    });
  });

  it("resolves expressions in every attribute: lists, text around expressions, dates, durations and numbers", () => {
    const behaviour: ElementBehaviour = {
      name: "Approve ${subject}",
      documentation: [{ text: "Request of ${originator}" }],
      formKey: "${'approve'}-request",
      assignee: "${originator}",
      candidateUsers: "${approvers}",
      candidateGroups: "${group}, avengers",
      dueDate: "${due}",
      followUpDate: "P1DT2H",
      priority: "${prio}",
    };
    expect(userTaskAttributes("approve", behaviour, variables, NOW)).toEqual({
      name: "Approve Salary",
      description: "Request of kermit",
      formKey: "approve-request",
      assignee: "kermit",
      candidateUsers: ["fozzie", "gonzo"],
      candidateGroups: ["avengers", "muppetshow"],
      dueDate: "2026-12-24T17:00:00.000Z",
      followUpDate: "2026-11-24T12:00:00.000Z",
      priority: 80,
    });
  });

  it("names the element and attribute when one cannot be resolved", () => {
    expect(() => userTaskAttributes("approve", { assignee: "${nobody}" }, variables, NOW)).toThrow(AttributeError);
    expect(() => userTaskAttributes("approve", { assignee: "${nobody}" }, variables, NOW)).toThrow(/approve: assignee: Cannot resolve identifier 'nobody'/);
    expect(() => userTaskAttributes("approve", { dueDate: "${subject}" }, variables, NOW)).toThrow(/dueDate: not a date/);
    expect(() => userTaskAttributes("approve", { priority: "high" }, variables, NOW)).toThrow(/priority/);
  });
});

describe("attribute values", () => {
  it("reads dates in the forms a BPMN file or a variable may give", () => {
    expect(dateOf("2026-12-01T10:00:00", NOW)).toBe("2026-12-01T10:00:00.000Z");
    expect(dateOf("2026-12-01T10:00:00.5+0200", NOW)).toBe("2026-12-01T08:00:00.500Z");
    expect(dateOf("2026-12-01", NOW)).toBe("2026-12-01T00:00:00.000Z");
    expect(dateOf(Date.parse("2026-12-01T10:00:00Z"), NOW)).toBe("2026-12-01T10:00:00.000Z");
    expect(dateOf("P3D", NOW)).toBe("2026-11-26T10:00:00.000Z");
    expect(dateOf("PT30M", NOW)).toBe("2026-11-23T10:30:00.000Z");
    expect(dateOf("P1M", NOW)).toBe("2026-12-23T10:00:00.000Z");
    expect(dateOf("", NOW)).toBeNull();
    expect(dateOf("soon", NOW)).toBeNull();
    expect(dateOf({}, NOW)).toBeNull();
  });

  it("reads name lists from text or lists", () => {
    expect(namesOf(" a, b ,,a ")).toEqual(["a", "b"]);
    expect(namesOf(["b", "a, c"])).toEqual(["a", "b", "c"]);
    expect(namesOf(null)).toEqual([]);
  });

  it("joins the documentation's parts and tells external tasks", () => {
    expect(documentationOf({ documentation: [{ text: "One" }, { text: " " }, { text: "Two" }] })).toBe("One\nTwo");
    expect(documentationOf({})).toBeNull();
    expect(isExternalTask({ type: "external", topic: "t" })).toBe(true);
    expect(isExternalTask({})).toBe(false);
  });
});

describe("input and output parameters", () => {
  const inputOutput = (inputParameters: unknown[], outputParameters: unknown[] = []): ElementBehaviour =>
    ({ extensionElements: { values: [{ $type: "camunda:InputOutput", inputParameters, outputParameters }] } }) as ElementBehaviour;

  it("resolves text, lists and maps; later parameters see earlier ones", () => {
    const behaviour = inputOutput([
      { name: "auditState", value: "Submitted" },
      { name: "who", value: "${originator}" },
      { name: "list", definition: { $type: "camunda:List", items: [{ $type: "camunda:Value", value: "a" }, { $type: "camunda:Value", value: "${who}" }] } },
      { name: "map", definition: { $type: "camunda:Map", entries: [{ key: "k", value: "${prio + 1}" }] } },
    ]);
    expect(inputParameters("audit", behaviour, variables)).toEqual({ auditState: "Submitted", who: "kermit", list: ["a", "kermit"], map: { k: 81 } });
    expect(inputParameters("audit", {}, variables)).toEqual({});
  });

  it("refuses scripts, and maps output parameters in the element's scope", () => {
    expect(() => inputParameters("audit", inputOutput([{ name: "s", definition: { $type: "camunda:Script", value: "1+1" } }]), variables)).toThrow(/not supported/);
    const behaviour = inputOutput([], [{ name: "decision", value: "${approved ? 'yes' : 'no'}" }]);
    expect(outputParameters("approve", behaviour, { approved: true })).toEqual({ decision: "yes" });
  });
});

describe("variable changes of a step", () => {
  let n = 0;
  const context = { time: NOW, instanceId: "i1", definitionId: "d1", definitionKey: "k", newId: () => `id${++n}` };

  it("records creations, real updates with the next revision, and deletions; unchanged values not at all", () => {
    const first = diffVariables({}, { a: 1, b: { x: 1 } }, {}, context);
    expect(first.updates.map((u) => [u.kind, u.name, u.revision, u.type, u.value])).toEqual([
      ["create", "a", 0, "Integer", 1],
      ["create", "b", 0, "Json", { x: 1 }],
    ]);
    const second = diffVariables({ a: 1, b: { x: 1 } }, { a: 2, b: { x: 1 }, c: "new" }, first.meta, context);
    expect(second.updates.map((u) => [u.kind, u.name, u.revision, u.variableInstanceId === first.meta[u.name]?.id])).toEqual([
      ["update", "a", 1, true],
      ["create", "c", 0, false],
    ]);
    const third = diffVariables({ a: 2, b: { x: 1 }, c: "new" }, { a: 2, c: "new" }, second.meta, context);
    expect(third.updates.map((u) => [u.kind, u.name, u.revision, u.type])).toEqual([["delete", "b", 1, "Null"]]);
    expect(Object.keys(third.meta).sort()).toEqual(["a", "c"]);
  });

  it("sets values on the element's own variables first, the rest on the process", () => {
    expect(splitByScope({ auditState: "Done", result: 1 }, { auditState: "Submitted", other: true })).toEqual({
      process: { result: 1 },
      local: { auditState: "Done", other: true },
    });
  });
});
