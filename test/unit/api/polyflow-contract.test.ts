// The contract checker itself: a departure from Polyflow's contract must be reported, or the contract test
// (test/e2e/polyflow-contract.test.ts) could pass while the answers are wrong. Also the DTOs of the REST API
// against the contract, without a server.
import { describe, expect, it } from "vitest";
import { mismatches, operations, schemas, totalHeaderMismatches } from "../../fixtures/polyflow-contract.ts";
import { dataEntryDto, FormUrls, processDto, taskDto, viewSort } from "../../../gateway/tasklist-dto.ts";
import { parseSort } from "../../../view/filters.ts";

const definition = {
  processDefinitionId: "process_approve_request:1:x",
  processDefinitionKey: "process_approve_request",
  processDefinitionVersion: 1,
  applicationName: "example-process-approval",
  processName: "Request Approval",
  processVersionTag: null,
  processDescription: "This is a wonderful process.",
  formKey: "start-approval",
  startsThroughForm: true,
  startableFromTasklist: true,
  candidateStarterUsers: [],
  candidateStarterGroups: ["avengers", "muppetshow"],
};

describe("Polyflow contract checker", () => {
  it("lists the contract's ten operations once each", () => {
    expect(operations.map((o) => o.id).sort()).toEqual(
      ["claim", "complete", "defer", "getBusinessDataEntries", "getProfile", "getStartableProcesses", "getTasks", "getUsers", "undefer", "unclaim"].sort(),
    );
  });

  it("reports a process definition whose version is a number (Taskpool's answer before issue 14)", () => {
    const before = { definitionId: "d", definitionKey: "k", definitionVersion: 1, processName: "P", candidateUsers: [], candidateGroups: [] };
    expect(mismatches(schemas.ProcessDefinition, before)).toEqual(["$.definitionVersion: expected a string, got number"]);
  });

  it("reports a missing or non-integer total", () => {
    expect(totalHeaderMismatches(null, 0)).toEqual(["X-ElementCount: missing"]);
    expect(totalHeaderMismatches("many", 0)).toHaveLength(1);
    expect(totalHeaderMismatches("1", 2)).toHaveLength(1);
    expect(totalHeaderMismatches("12", 2)).toEqual([]);
  });

  it("takes null for absent on optional properties, but not on required ones; allows fields of ours", () => {
    const task = { id: "t", url: "u", candidateGroups: [], candidateUsers: [], processName: "p", createTime: "2026-11-30T10:00:00.000Z", dueDate: null, assignee: null, lastRefusal: null, applicationName: "a" };
    expect(mismatches(schemas.Task, task)).toEqual([]);
    expect(mismatches(schemas.Task, { ...task, url: null })).toEqual(["$.url: required, but null"]);
    expect(mismatches(schemas.Task, { ...task, createTime: undefined })).toEqual(["$.createTime: required, but missing"]);
  });

  it("checks formats, enumerations, integers and nested lists", () => {
    expect(mismatches(schemas.Task, { id: "t", url: "u", candidateGroups: [1], candidateUsers: [], processName: "p", createTime: "yesterday", priority: 2.5 })).toEqual([
      "$.candidateGroups[0]: expected a string, got number",
      "$.createTime: expected a date-time, got \"yesterday\"",
      "$.priority: expected an integer, got number",
    ]);
    const entry = { entryType: "T", entryId: "1", payload: {}, name: "n", type: "t", applicationName: "a", currentStateType: "DONE", protocol: [{ timestamp: "2026-11-30T10:00:00Z", state: "s" }] };
    expect(mismatches(schemas.DataEntry, entry)).toEqual(['$.currentStateType: "DONE" is not one of PRELIMINARY, IN_PROGRESS, COMPLETED, CANCELLED, DELETED, UNDEFINED', "$.protocol[0].stateType: required, but missing"]);
  });

  it("a payload may hold any JSON values (the reference server puts numbers and strings there)", () => {
    expect(mismatches(schemas.Payload, { amount: 1000, subject: "Salary", tags: ["a"] })).toEqual([]);
    expect(mismatches(schemas.Payload, [1])).toEqual(["$: expected an object, got array"]);
  });
});

describe("the REST API's DTOs against the contract", () => {
  // The templates Request Approval announces in its service's metadata (apps/approval/gateway.ts, approvalFormUrls).
  const forms = "http://localhost:8080/forms/#";
  const approvalTemplates = { task: `${forms}/tasks/\${formKey}/\${id}?userId=%userId%`, process: `${forms}/start?userId=%userId%`, dataEntry: `${forms}/approval-request/\${entryId}?userId=%userId%` };
  const urls = FormUrls.fromEnvironment(undefined, "http://localhost:8081");
  urls.announce([{ metadata: {} }, { metadata: { formUrls: { "example-process-approval": approvalTemplates } } }]);

  it("takes the templates the applications' services announce; FORM_URLS replaces an application's", () => {
    const task = { id: "t-1", formKey: "approve-request", applicationName: "example-process-approval" };
    const announced = FormUrls.fromEnvironment(JSON.stringify({ configured: { task: "https://configured/${id}" } }), "http://localhost:8081/");
    expect(announced.task(task)).toBe("http://localhost:8081/?task=t-1&userId=%userId%");
    expect(announced.announce([{ metadata: { formUrls: { "example-process-approval": { ...approvalTemplates, other: 42 }, configured: { task: "https://announced/${id}" } } } }])).toBe(true);
    expect(announced.announce([{ metadata: { formUrls: { configured: { task: "https://announced/${id}" }, "example-process-approval": approvalTemplates } } }])).toBe(false);
    expect(announced.task(task)).toBe("http://localhost:8080/forms/#/tasks/approve-request/t-1?userId=%userId%");
    expect(announced.task({ ...task, applicationName: "configured" })).toBe("https://configured/t-1");
    // An application gone from the registry takes its templates with it.
    expect(announced.announce([])).toBe(true);
    expect(announced.task(task)).toBe("http://localhost:8081/?task=t-1&userId=%userId%");
  });

  it("a process definition conforms: its version as text, the start form's URL handing the user over", () => {
    const dto = processDto(definition, urls);
    expect(mismatches(schemas.ProcessDefinition, dto)).toEqual([]);
    expect(dto).toMatchObject({ definitionVersion: "1", url: "http://localhost:8080/forms/#/start?userId=%userId%", startsThroughForm: true });
  });

  it("a process without a start form links to Taskpool's start dialog, so that link-only menus (Polyflow's) start it too", () => {
    const direct = { ...definition, processDefinitionKey: "quick note", formKey: null, startsThroughForm: false };
    expect(processDto(direct, urls).url).toBe("http://localhost:8081/?start=example-process-approval/quick%20note&userId=%userId%");
    // A form whose start is optional keeps its form's address; without a platform address there is no link.
    expect(processDto({ ...definition, startsThroughForm: false }, urls).url).toBe("http://localhost:8080/forms/#/start?userId=%userId%");
    expect(processDto(direct, new FormUrls({})).url).toBeNull();
    // A process that needs a form nobody configured has no link: the task list says why it cannot start it.
    expect(processDto({ ...definition, applicationName: "elsewhere" }, urls).url).toBeNull();
  });

  it("a view document written before startsThroughForm existed answers as a new registration would", () => {
    const { startsThroughForm: _s, ...old } = definition;
    expect(processDto(old, urls).startsThroughForm).toBe(true);
    expect(processDto({ ...old, formKey: null }, urls).startsThroughForm).toBe(false);
  });

  it("task and data entry URLs fill in ${…} here and leave %userId% to the client", () => {
    const task = {
      id: "t-1",
      name: "Approve",
      formKey: "approve-request",
      sourceReference: { instanceId: "pi-1", definitionKey: "process_approve_request", applicationName: "example-process-approval" },
      candidateGroups: [],
      candidateUsers: ["fozzy"],
      createTime: "2026-11-30T10:00:00.000Z",
      payload: { amount: 1 },
    };
    const dto = taskDto(task, urls);
    expect(dto.url).toBe("http://localhost:8080/forms/#/tasks/approve-request/t-1?userId=%userId%");
    expect(mismatches(schemas.Task, { ...dto, processName: "Request Approval" })).toEqual([]);
    // No template for its application: the task in Taskpool's own list, which always gives it a url.
    expect(taskDto({ ...task, sourceReference: { ...task.sourceReference, applicationName: "mail-inbox" } }, urls).url).toBe("http://localhost:8081/?task=t-1&userId=%userId%");
    const custom = new FormUrls({ other: { task: "https://forms.example/${processDefinitionKey}/${processInstanceId}/${id}?as=%userId%" } });
    expect(custom.task({ ...task, sourceReference: { ...task.sourceReference, applicationName: "other" } })).toBe("https://forms.example/process_approve_request/pi-1/t-1?as=%userId%");
    const entry = dataEntryDto(
      { entryType: "io.example.Request", entryId: "r 1", applicationName: "example-process-approval", name: "n", type: "Request", payload: {}, state: { processingType: "IN_PROGRESS", state: "Submitted" }, protocol: [] },
      urls,
    );
    expect(entry.url).toBe("http://localhost:8080/forms/#/approval-request/r%201?userId=%userId%");
    expect(mismatches(schemas.DataEntry, entry)).toEqual([]);
  });
});

describe("sort names of Polyflow's task list", () => {
  it("become the view's fields; everything else passes unchanged", () => {
    expect(viewSort(["+task.process", "-task.dueDate", "task.name"], "task")).toEqual(["+task.processName", "-task.dueDate", "task.name"]);
    expect(viewSort(["+dataentry.name", "-dataentry.type", "+dataentry.currentStatusType", "-dataentry.currentState", "-data.name"], "dataEntry")).toEqual([
      "+data.name",
      "-data.type",
      "+data.state.processingType",
      "-data.state.state",
      "-data.name",
    ]);
    expect(viewSort(undefined, "task")).toBeUndefined();
    // Each translation is a sort the view accepts.
    for (const item of viewSort(["+task.process"], "task")!) expect(() => parseSort([item], "task", "-createTime")).not.toThrow();
    for (const item of viewSort(["+dataentry.name", "+dataentry.type", "-dataentry.currentStatusType", "+dataentry.currentState"], "dataEntry")!) {
      expect(() => parseSort([item], "dataEntry", "-lastModifiedDate")).not.toThrow();
    }
  });
});
