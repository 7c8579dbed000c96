// The engine connector against the real Operaton engine (scripts/services.sh): BPMN deployed over REST with
// process keys unique to this run (the engine is shared and long-lived), the platform's event store and command
// services in this process, and the connector either in this process (polling on `engineConnector.sync`, so
// that every step is deterministic) or in a child process that is SIGKILLed and restarted. Every check reads
// the event store's streams, with exact event lists.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { resolve } from "node:path";
import EventStoreService from "../../services/eventstore.service.ts";
import TaskService from "../../services/task.service.ts";
import DataEntryService from "../../services/data-entry.service.ts";
import ProcessDefinitionService from "../../services/process-definition.service.ts";
import ProcessInstanceService from "../../services/process-instance.service.ts";
import ProcessVariableService from "../../services/process-variable.service.ts";
import { createEngineConnector } from "../../services/engine-connector.service.ts";
import { encodeVariables, parseEngineDate } from "../../domain/engine/variables.ts";
import type { JsonObject } from "../../domain/types.ts";
import { BpmnError, ExternalTaskWorker } from "../../engine/connector/external-tasks.ts";
import { dataEntryChange, dataEntryDeletion } from "../../domain/engine/data-entry-sender.ts";
import { call, spawnNode, startBroker, testDatabaseUrl, testNatsUrl, testOperatonUrl, unique, waitFor, type NodeProcess, streamReader } from "../helpers.ts";

const engineUrl = testOperatonUrl();

async function rest<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(engineUrl + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

async function deploy(name: string, resourceName: string, xml: string): Promise<void> {
  const form = new FormData();
  form.set("deployment-name", name);
  form.set("deployment-source", "taskpool-test");
  form.set("data", new Blob([xml], { type: "application/xml" }), resourceName);
  const response = await fetch(`${engineUrl}/deployment/create`, { method: "POST", body: form });
  if (!response.ok) throw new Error(`deployment of ${resourceName} failed: ${response.status} ${await response.text()}`);
}

async function startInstance(key: string, businessKey: string | null, variables: JsonObject): Promise<string> {
  const started = await rest<{ id: string }>("POST", `/process-definition/key/${key}/start`, { businessKey, variables: encodeVariables(variables, "String") });
  return started.id;
}

async function openTasksOf(instanceId: string): Promise<any[]> {
  return rest("GET", `/task?processInstanceId=${instanceId}`);
}

async function onlyTaskOf(instanceId: string): Promise<any> {
  const tasks = await openTasksOf(instanceId);
  expect(tasks).toHaveLength(1);
  return tasks[0];
}

function approvalBpmn(key: string, starters: { users: string; groups: string }, versionTag = "v1"): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    id="defs_${key}" targetNamespace="http://taskpool.io/test">
  <bpmn:process id="${key}" name="Request Approval (test)" isExecutable="true" camunda:historyTimeToLive="P1D"
      camunda:candidateStarterUsers="${starters.users}" camunda:candidateStarterGroups="${starters.groups}" camunda:versionTag="${versionTag}">
    <bpmn:documentation>Approves a request.</bpmn:documentation>
    <bpmn:startEvent id="start" camunda:formKey="start-approval"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve request" camunda:formKey="approve-request" camunda:candidateGroups="muppetshow" camunda:candidateUsers="gonzo" camunda:priority="60"/>
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="review"/>
    <bpmn:userTask id="review" name="Review decision" camunda:formKey="review-decision" camunda:assignee="\${applicant}"/>
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>`;
}

const REQUEST = "io.taskpool.example.Request";
const REVIEW = "io.taskpool.example.Review";
const commandServices = [TaskService, ProcessDefinitionService, ProcessInstanceService, ProcessVariableService];

describe("engine connector against Operaton (in process, polling on sync)", () => {
  const key = unique("tp_approval");
  const applicationName = unique("approval-app");
  let broker: ServiceBroker;
  let preexisting: string;

  const { events, types, waitForTypes } = streamReader(() => broker);
  const sync = (reconcile = false) => call(broker, "engineConnector.sync", { reconcile });

  beforeAll(async () => {
    await deploy(`approval ${key}`, `${key}.bpmn`, approvalBpmn(key, { users: "kermit", groups: "muppetshow, avengers" }));
    // A task that exists before the connector ever ran.
    preexisting = await startInstance(key, "BK-0", { requestId: "R-0", applicant: "kermit", amount: 10, subject: "Old", secret: "s0" });
    broker = await startBroker([
      { ...EventStoreService, settings: { pgliteDir: "memory" } },
      ...commandServices,
      DataEntryService,
      createEngineConnector({
        env: {},
        settings: {
          applicationName,
          engineUrl,
          pgliteDir: "memory",
          processDefinitionKeys: [key],
          autoPoll: false,
          overlapMs: 5000,
          reconcileIntervalMs: 0,
          directStartKeys: [key],
          enrichment: {
            variableFilters: [
              { kind: "process", processDefinitionKey: key, mode: "EXCLUDE", variables: ["secret"] },
              { kind: "task", processDefinitionKey: key, mode: "INCLUDE", tasks: { review: ["requestId", "applicant", "approved", "comment"] } },
            ],
            correlations: [
              {
                processDefinitionKey: key,
                global: [{ variable: "requestId", entryType: REQUEST }],
                tasks: { review: [{ variable: "requestId", entryType: REVIEW }] },
              },
            ],
          },
        },
        processor: { pollIntervalMs: 200, leaseMs: 2000 },
      }),
    ]);
  });

  afterAll(() => broker?.stop());

  it("imports the tasks and instances that existed before its first run, and registers the process definitions with their starters", async () => {
    const status = await sync();
    expect(status.engine).toMatchObject({ product: "Operaton", reachable: true });
    const task = await onlyTaskOf(preexisting);
    const created = await events(`task-${task.id}`);
    expect(created.map((e) => e.type)).toEqual(["TaskCreated"]);
    expect(created[0].data).toMatchObject({
      id: task.id,
      taskDefinitionKey: "approve",
      name: "Approve request",
      formKey: "approve-request",
      businessKey: "BK-0",
      priority: 60,
      assignee: null,
      candidateUsers: ["gonzo"],
      candidateGroups: ["muppetshow"],
      payload: { requestId: "R-0", applicant: "kermit", amount: 10, subject: "Old" },
      correlations: { [REQUEST]: "R-0" },
      sourceReference: { type: "process", instanceId: preexisting, definitionKey: key, name: "Request Approval (test)", applicationName },
    });
    expect(await types(`processInstance-${preexisting}`)).toEqual(["ProcessInstanceStarted"]);

    const [definition] = await rest<any[]>("GET", `/process-definition?key=${key}&latestVersion=true`);
    const registered = await events(`processDefinition-${definition.id}`);
    expect(registered.map((e) => e.type)).toEqual(["ProcessDefinitionRegistered"]);
    expect(registered[0].data).toEqual({
      processDefinitionId: definition.id,
      processDefinitionKey: key,
      processDefinitionVersion: 1,
      applicationName,
      processName: "Request Approval (test)",
      processVersionTag: "v1",
      processDescription: "Approves a request.",
      formKey: "start-approval",
      // This test starts it from the pool too: its start form is configured optional.
      startsThroughForm: false,
      startableFromTasklist: true,
      candidateStarterUsers: ["kermit"],
      candidateStarterGroups: ["avengers", "muppetshow"],
    });

    // A second poll finds nothing new and sends nothing.
    const before = status.counts.commandsSent;
    expect((await sync()).counts.commandsSent).toBe(before);
  });

  it("reports a new task with its payload filtered and its correlations, the instance, and its variables", async () => {
    const instance = await startInstance(key, "BK-1", { requestId: "R-1", applicant: "kermit", amount: 100, subject: "Salary", secret: "s1" });
    await sync();
    const task = await onlyTaskOf(instance);
    const created = await events(`task-${task.id}`);
    expect(created.map((e) => e.type)).toEqual(["TaskCreated"]);
    expect(created[0].data.payload).toEqual({ requestId: "R-1", applicant: "kermit", amount: 100, subject: "Salary" });
    expect(created[0].data.correlations).toEqual({ [REQUEST]: "R-1" });
    expect(created[0].data.createTime).toBe(parseEngineDate(task.created));
    expect(await types(`processInstance-${instance}`)).toEqual(["ProcessInstanceStarted"]);
    const variables = await events(`processVariables-${instance}`);
    expect(variables.map((e) => e.type)).toEqual(["ProcessVariablesChanged"]);
    // The variable filter applies to process variables too: no `secret`.
    expect(variables[0].data.variableChanges.map((c: any) => [c.kind, c.variableName, c.value.value]).sort()).toEqual([
      ["create", "amount", 100],
      ["create", "applicant", "kermit"],
      ["create", "requestId", "R-1"],
      ["create", "subject", "Salary"],
    ]);
  });

  it("performs a claim in the engine and the pool sees the assignment without another poll", async () => {
    const instance = await startInstance(key, "BK-2", { requestId: "R-2", applicant: "piggy", amount: 5, subject: "Claim" });
    await sync();
    const task = await onlyTaskOf(instance);
    await call(broker, "task.claim", { id: task.id, assignee: "gonzo" });
    await waitForTypes(`task-${task.id}`, ["TaskCreated", "TaskClaimed", "TaskAssigned"]);
    expect((await events(`task-${task.id}`))[2].data.assignee).toBe("gonzo");
    expect((await rest("GET", `/task/${task.id}`)).assignee).toBe("gonzo");
  });

  it("reports a claim the engine refuses (someone else holds the task there) as TaskInteractionRefused, then the real assignee", async () => {
    const instance = await startInstance(key, "BK-3", { requestId: "R-3", applicant: "piggy", amount: 5, subject: "Refused" });
    await sync();
    const task = await onlyTaskOf(instance);
    // Claimed directly in the engine; the pool does not know yet.
    await rest("POST", `/task/${task.id}/claim`, { userId: "piggy" });
    await call(broker, "task.claim", { id: task.id, assignee: "gonzo" });
    await waitForTypes(`task-${task.id}`, ["TaskCreated", "TaskClaimed", "TaskInteractionRefused", "TaskAssigned"]);
    const stream = await events(`task-${task.id}`);
    expect(stream[2].data).toMatchObject({ interaction: "claim", username: "gonzo" });
    expect(stream[2].data.reason).toMatch(/already claimed by piggy/);
    expect(stream[3].data.assignee).toBe("piggy");
    expect((await rest("GET", `/task/${task.id}`)).assignee).toBe("piggy");
  });

  it("turns changes made directly in Operaton (assignee, candidates, due and follow-up dates) into the matching commands, in Polyflow's order", async () => {
    const instance = await startInstance(key, "BK-4", { requestId: "R-4", applicant: "kermit", amount: 40, subject: "Direct" });
    await sync();
    const task = await onlyTaskOf(instance);
    await rest("POST", `/task/${task.id}/assignee`, { userId: "fozzie" });
    await rest("POST", `/task/${task.id}/identity-links`, { userId: "animal", type: "candidate" });
    await rest("POST", `/task/${task.id}/identity-links/delete`, { userId: "gonzo", type: "candidate" });
    await rest("POST", `/task/${task.id}/identity-links`, { groupId: "avengers", type: "candidate" });
    await rest("POST", `/task/${task.id}/identity-links/delete`, { groupId: "muppetshow", type: "candidate" });
    const current = await rest("GET", `/task/${task.id}`);
    await rest("PUT", `/task/${task.id}`, { ...current, due: "2026-12-24T18:00:00.000+0000", followUp: "2026-12-20T08:00:00.000+0000" });
    await sync();
    const stream = await events(`task-${task.id}`);
    expect(stream.map((e) => e.type)).toEqual([
      "TaskCreated",
      "TaskAssigned",
      "TaskCandidateUserAdded",
      "TaskCandidateUserDeleted",
      "TaskCandidateGroupAdded",
      "TaskCandidateGroupDeleted",
      "TaskAttributesUpdated",
    ]);
    expect(stream.slice(1, 6).map((e) => e.data.assignee ?? e.data.userId ?? e.data.groupId)).toEqual(["fozzie", "animal", "gonzo", "avengers", "muppetshow"]);
    expect(stream[6].data).toMatchObject({ dueDate: "2026-12-24T18:00:00.000Z", followUpDate: "2026-12-20T08:00:00.000Z", name: "Approve request" });
    // Nothing more on the next polls: the shadow and the engine agree.
    await sync();
    expect(await types(`task-${task.id}`)).toHaveLength(7);
  });

  it("defers and undefers in the engine (follow-up date), and the pool sees the engine's answer", async () => {
    const instance = await startInstance(key, "BK-5", { requestId: "R-5", applicant: "kermit", amount: 50, subject: "Defer" });
    await sync();
    const task = await onlyTaskOf(instance);
    await call(broker, "task.defer", { id: task.id, followUpDate: "2027-01-15T09:00:00Z" });
    await waitForTypes(`task-${task.id}`, ["TaskCreated", "TaskDeferred", "TaskAttributesUpdated"]);
    expect((await rest("GET", `/task/${task.id}`)).followUp).toBe("2027-01-15T09:00:00.000+0000");
    await call(broker, "task.undefer", { id: task.id });
    await waitForTypes(`task-${task.id}`, ["TaskCreated", "TaskDeferred", "TaskAttributesUpdated", "TaskUndeferred", "TaskAttributesUpdated"]);
    const stream = await events(`task-${task.id}`);
    expect([stream[2].data.followUpDate, stream[4].data.followUpDate]).toEqual(["2027-01-15T09:00:00.000Z", null]);
    expect((await rest("GET", `/task/${task.id}`)).followUp).toBeNull();
  });

  it("follows variable changes into process variables and task payloads, respecting the filter", async () => {
    const instance = await startInstance(key, "BK-6", { requestId: "R-6", applicant: "kermit", amount: 60, subject: "Vars", secret: "s6" });
    await sync();
    const task = await onlyTaskOf(instance);
    await rest("PUT", `/process-instance/${instance}/variables/amount`, { value: 65, type: "Integer" });
    await rest("PUT", `/process-instance/${instance}/variables/secret`, { value: "changed", type: "String" });
    await sync();
    const variables = await events(`processVariables-${instance}`);
    expect(variables.map((e) => e.type)).toEqual(["ProcessVariablesChanged", "ProcessVariablesChanged"]);
    expect(variables[1].data.variableChanges.map((c: any) => [c.kind, c.variableName, c.revision, c.value.value])).toEqual([["update", "amount", 1, 65]]);
    const stream = await events(`task-${task.id}`);
    expect(stream.map((e) => e.type)).toEqual(["TaskCreated", "TaskAttributesUpdated"]);
    expect(stream[1].data.payload).toEqual({ requestId: "R-6", applicant: "kermit", amount: 65, subject: "Vars" });

    await rest("DELETE", `/process-instance/${instance}/variables/subject`);
    await sync();
    const after = await events(`processVariables-${instance}`);
    expect(after.map((e) => e.type)).toHaveLength(3);
    expect(after[2].data.variableChanges.map((c: any) => [c.kind, c.variableName])).toEqual([["delete", "subject"]]);
    expect((await events(`task-${task.id}`))[2].data.payload).toEqual({ requestId: "R-6", applicant: "kermit", amount: 65 });
  });

  it("completes a task in Operaton with the payload's typed variables; the process reaches its next task, which appears at once", async () => {
    const instance = await startInstance(key, "BK-7", { requestId: "R-7", applicant: "kermit", amount: 70, subject: "Complete", secret: "s7" });
    await sync();
    const task = await onlyTaskOf(instance);
    await call(broker, "task.requestCompletion", { id: task.id, assignee: "fozzie", payload: { approved: true, comment: "fine", score: 2.5, details: { level: 2 } } });
    await waitForTypes(`task-${task.id}`, ["TaskCreated", "TaskClaimed", "TaskToBeCompleted", "TaskAssigned", "TaskCompleted"]);
    const stream = await events(`task-${task.id}`);
    expect(stream[4].data.assignee).toBe("fozzie");
    const history = await rest<any[]>("GET", `/history/variable-instance?processInstanceId=${instance}&deserializeValues=false`);
    const byName = Object.fromEntries(history.map((v) => [v.name, [v.type, v.value]]));
    expect(byName.approved).toEqual(["Boolean", true]);
    expect(byName.comment).toEqual(["String", "fine"]);
    expect(byName.score).toEqual(["Double", 2.5]);
    expect(JSON.parse(byName.details[1])).toEqual({ level: 2 });

    // The next user task, without waiting for a poll: assigned by the BPMN (${applicant}), payload by the task filter.
    const next = await waitFor(async () => (await openTasksOf(instance))[0], 5000);
    await waitForTypes(`task-${next.id}`, ["TaskCreated"]);
    const created = (await events(`task-${next.id}`))[0].data;
    expect(created).toMatchObject({ taskDefinitionKey: "review", assignee: "kermit", correlations: { [REQUEST]: "R-7", [REVIEW]: "R-7" } });
    expect(created.payload).toEqual({ requestId: "R-7", applicant: "kermit", approved: true, comment: "fine" });

    // Completed directly in the engine: the task completes and the instance finishes.
    await rest("POST", `/task/${next.id}/complete`, {});
    await sync();
    expect(await types(`task-${next.id}`)).toEqual(["TaskCreated", "TaskCompleted"]);
    expect(await types(`processInstance-${instance}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
  });

  it("reports a cancelled instance and its deleted task, and suspensions and resumptions", async () => {
    const instance = await startInstance(key, "BK-8", { requestId: "R-8", applicant: "kermit", amount: 80, subject: "Cancel" });
    await sync();
    const task = await onlyTaskOf(instance);
    await rest("PUT", `/process-instance/${preexisting}/suspended`, { suspended: true });
    await sync();
    expect(await types(`processInstance-${preexisting}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceSuspended"]);
    await rest("PUT", `/process-instance/${preexisting}/suspended`, { suspended: false });
    await sync();
    expect(await types(`processInstance-${preexisting}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceSuspended", "ProcessInstanceResumed"]);

    await rest("DELETE", `/process-instance/${instance}`);
    await sync();
    const stream = await events(`task-${task.id}`);
    expect(stream.map((e) => e.type)).toEqual(["TaskCreated", "TaskDeleted"]);
    expect(stream[1].data.deleteReason).toBeTruthy();
    expect(await types(`processInstance-${instance}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceCancelled"]);
  });

  it("reports a task created and finished between two polls as created, then completed", async () => {
    const instance = await startInstance(key, "BK-9", { requestId: "R-9", applicant: "kermit", amount: 90, subject: "Quick" });
    const task = await onlyTaskOf(instance);
    await rest("POST", `/task/${task.id}/claim`, { userId: "animal" });
    await rest("POST", `/task/${task.id}/complete`, {});
    await sync();
    const stream = await events(`task-${task.id}`);
    expect(stream.map((e) => e.type)).toEqual(["TaskCreated", "TaskCompleted"]);
    expect(stream[0].data).toMatchObject({ taskDefinitionKey: "approve", candidateGroups: ["muppetshow"], candidateUsers: ["gonzo"], payload: { requestId: "R-9" } });
    expect(stream[1].data.assignee).toBe("animal");
  });

  it("starts a process on a user's request, once, and reports its instance and first task at once", async () => {
    await sync();
    const [definition] = await rest<any[]>("GET", `/process-definition?key=${key}&latestVersion=true`);
    const requestId = unique("request");
    await call(broker, "processDefinition.requestStart", {
      processDefinitionId: definition.id,
      requestedBy: "kermit",
      requestId,
      businessKey: "BK-10",
      variables: { requestId: "R-10", applicant: "kermit", amount: 1000, subject: "Started from the pool" },
    });
    const instances = await waitFor(async () => {
      const found = await rest<any[]>("POST", "/history/process-instance", { variables: [{ name: "taskpoolRequestId", operator: "eq", value: requestId }] });
      return found.length > 0 ? found : false;
    }, 10_000);
    expect(instances).toHaveLength(1);
    expect(instances[0].businessKey).toBe("BK-10");
    const task = await onlyTaskOf(instances[0].id);
    await waitForTypes(`task-${task.id}`, ["TaskCreated"]);
    expect((await events(`task-${task.id}`))[0].data.payload).toMatchObject({ requestId: "R-10", amount: 1000, taskpoolRequestId: requestId });
    await waitForTypes(`processInstance-${instances[0].id}`, ["ProcessInstanceStarted"]);
    const status = await call(broker, "engineConnector.status");
    expect(status.counts.interactions.performed).toBeGreaterThan(0);
  });

  it("performs a redelivered interaction event once (at-least-once delivery), and a replay after a reset not at all", async () => {
    const all = await call(broker, "eventstore.readAll", { eventTypes: ["TaskClaimed", "ProcessStartRequested"], limit: 10_000 });
    const ours = all.events.filter((e: any) => (e.data.sourceReference?.applicationName ?? e.data.applicationName) === applicationName);
    expect(ours.map((e: any) => e.type)).toEqual(expect.arrayContaining(["TaskClaimed", "ProcessStartRequested"]));
    const service: any = broker.getLocalService("engineConnector");
    const before = (await call(broker, "eventstore.head")).globalPosition;
    const started = await rest<any[]>("GET", `/history/process-instance?processDefinitionKey=${key}`);
    await service.handleEvents(ours, { replaying: false });
    await service.handleEvents(ours, { replaying: true });
    // A start that was under way when the connector died (recorded as pending): the instance is found by the
    // request id it carries, not started a second time.
    const start = ours.find((e: any) => e.type === "ProcessStartRequested");
    const crashed = { ...start, eventId: unique("crashed-delivery") };
    await service.connector.db().saveInteraction({ eventId: crashed.eventId, eventType: crashed.type, outcome: "pending", detail: {} });
    await service.handleEvents([crashed], { replaying: false });
    expect((await service.connector.db().getInteraction(crashed.eventId)).outcome).toBe("performed");
    expect((await call(broker, "eventstore.head")).globalPosition).toBe(before);
    expect(await rest<any[]>("GET", `/history/process-instance?processDefinitionKey=${key}`)).toHaveLength(started.length);
  });

  it("registers a new deployment's definition on the next poll", async () => {
    await deploy(`approval ${key} v2`, `${key}.bpmn`, approvalBpmn(key, { users: "kermit, piggy", groups: "avengers" }, "v2"));
    await sync();
    const [definition] = await rest<any[]>("GET", `/process-definition?key=${key}&latestVersion=true`);
    expect(definition.version).toBe(2);
    const registered = await events(`processDefinition-${definition.id}`);
    expect(registered.map((e) => e.type)).toEqual(["ProcessDefinitionRegistered"]);
    expect(registered[0].data).toMatchObject({ processDefinitionVersion: 2, processVersionTag: "v2", candidateStarterUsers: ["kermit", "piggy"], candidateStarterGroups: ["avengers"] });
  });

  it("sends the application's data entries through the data-entry sender, each change once", async () => {
    const modification = { time: "2026-11-23T10:00:00.000Z", username: "kermit", log: "Submitted" };
    const change = dataEntryChange(applicationName, { entryType: REQUEST, entryId: "R-1", payload: { amount: 100 }, state: { processingType: "IN_PROGRESS", state: "Submitted" }, modification });
    await call(broker, change.action, change.params);
    await call(broker, change.action, change.params);
    const deletion = dataEntryDeletion(applicationName, { entryType: REQUEST, entryId: "R-1", modification: { ...modification, time: "2026-11-24T10:00:00.000Z" } });
    await call(broker, deletion.action, deletion.params);
    expect(await types(`dataEntry-${REQUEST}#R-1`)).toEqual(["DataEntryCreated", "DataEntryDeleted"]);
  });

  it("changes nothing on a full reconciliation when everything is in step", async () => {
    const before = await call(broker, "engineConnector.status");
    const after = await sync(true);
    expect(after.reconciliations).toBe(before.reconciliations + 1);
    expect(after.counts.commandsSent).toBe(before.counts.commandsSent);
    expect(after.errors.filter((e: any) => !before.errors.some((b: any) => b.at === e.at))).toEqual([]);
  });
});

describe("external task worker against Operaton", () => {
  const key = unique("tp_external");
  const topic = unique("topic");
  let worker: ExternalTaskWorker | undefined;
  afterAll(() => worker?.stop());

  it("completes with variables, reports failures with retries until an incident, and takes the BPMN error path", async () => {
    await deploy(
      `external ${key}`,
      `${key}.bpmn`,
      `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d_${key}" targetNamespace="http://taskpool.io/test">
  <bpmn:error id="rejected" errorCode="REJECTED"/>
  <bpmn:process id="${key}" isExecutable="true" camunda:historyTimeToLive="P1D">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:serviceTask id="work" camunda:type="external" camunda:topic="${topic}"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="done"/>
    <bpmn:endEvent id="done"/>
    <bpmn:boundaryEvent id="onRejected" attachedToRef="work"><bpmn:errorEventDefinition errorRef="rejected"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="onRejected" targetRef="rejectedEnd"/>
    <bpmn:endEvent id="rejectedEnd"/>
  </bpmn:process>
</bpmn:definitions>`,
    );
    const ok = await startInstance(key, null, { mode: "ok", n: 20 });
    const failing = await startInstance(key, null, { mode: "fail" });
    const rejected = await startInstance(key, null, { mode: "reject" });
    const calls: Record<string, number> = {};
    worker = new ExternalTaskWorker({ baseUrl: engineUrl, asyncResponseTimeout: 2000, lockDuration: 10_000, logger: { info() {}, warn() {}, error() {} } });
    expect(worker.workerId).not.toBe("some-random-id");
    worker.subscribe(topic, { retries: 2, retryTimeoutMs: 100, processDefinitionKey: key }, async (task) => {
      calls[task.processInstanceId] = (calls[task.processInstanceId] ?? 0) + 1;
      if (task.variables.mode === "fail") throw new Error("the service is down");
      if (task.variables.mode === "reject") throw new BpmnError("REJECTED", "not acceptable", { reason: "too big" });
      return { doubled: (task.variables.n as number) * 2, summary: { ok: true } };
    });
    worker.start();

    const ended = async (instanceId: string) => (await rest("GET", `/history/process-instance/${instanceId}`)).state === "COMPLETED";
    await waitFor(() => ended(ok), 15_000, 100);
    const variables = await rest<any[]>("GET", `/history/variable-instance?processInstanceId=${ok}&deserializeValues=false`);
    expect(Object.fromEntries(variables.map((v) => [v.name, v.value]))).toMatchObject({ doubled: 40 });
    expect(JSON.parse(variables.find((v) => v.name === "summary").value)).toEqual({ ok: true });

    await waitFor(() => ended(rejected), 15_000, 100);
    const path = await rest<any[]>("GET", `/history/activity-instance?processInstanceId=${rejected}&activityId=rejectedEnd`);
    expect(path).toHaveLength(1);
    const reason = await rest<any[]>("GET", `/history/variable-instance?processInstanceId=${rejected}&variableName=reason`);
    expect(reason[0]?.value).toBe("too big");

    // Two attempts (retries: 2), then an incident with the handler's message.
    const incidents = await waitFor(async () => {
      const found = await rest<any[]>("GET", `/incident?processInstanceId=${failing}`);
      return found.length > 0 ? found : false;
    }, 15_000, 100);
    expect(incidents[0].incidentMessage).toBe("the service is down");
    expect(calls[failing]).toBe(2);
    const stats = worker.status();
    expect(stats).toMatchObject({ completed: 1, failed: 2, bpmnErrors: 1, reportErrors: 0 });
    const stopping = Date.now();
    await worker.stop();
    // The pending long poll is cancelled, not waited out.
    expect(Date.now() - stopping).toBeLessThan(1500);
    worker = undefined;
  });
});

function workBpmn(key: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d_${key}" targetNamespace="http://taskpool.io/test">
  <bpmn:process id="${key}" name="Restart" isExecutable="true" camunda:historyTimeToLive="P1D">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:userTask id="work" name="Work" camunda:candidateGroups="crew"/>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>`;
}

describe("engine connector killed (SIGKILL) and restarted in the middle", () => {
  const namespace = unique("connector");
  const databases: string[] = [];
  let admin: pg.Client;
  let broker: ServiceBroker;
  let node: NodeProcess | undefined;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    broker = await startBroker([{ ...EventStoreService, settings: { pgliteDir: "memory" } }, ...commandServices], { namespace, transporter: testNatsUrl(), nodeID: "platform" });
  });

  afterAll(async () => {
    await node?.kill();
    await broker?.stop();
    for (const database of databases) await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const events = async (streamId: string): Promise<any[]> => (await call(broker, "eventstore.readStream", { streamId, allowEmpty: true })).events;
  const types = async (streamId: string): Promise<string[]> => (await events(streamId)).map((e) => e.type);

  /**
   * A connector node of its own (server.ts with SERVICES = the service file), its state in a fresh database or
   * in the one of an earlier connector (state is keyed by application: connectors can share a database).
   */
  async function connectorSetup(shared?: string): Promise<{ key: string; applicationName: string; database: string; spawn(): NodeProcess }> {
    const key = unique("tp_restart");
    const applicationName = unique("restart-app");
    const database = shared ?? unique("tpconnector");
    if (!shared) {
      databases.push(database);
      await admin.query(`CREATE DATABASE ${database}`);
    }
    await deploy(`restart ${key}`, `${key}.bpmn`, workBpmn(key));
    const url = new URL(testDatabaseUrl());
    url.pathname = `/${database}`;
    const spawn = () =>
      spawnNode({
        SERVICES: resolve("services/engine-connector.service.ts"),
        NODE_ID: `connector-${applicationName}`,
        NAMESPACE: namespace,
        TRANSPORTER: testNatsUrl(),
        DATABASE_URL: url.toString(),
        APPLICATION_NAME: applicationName,
        ENGINE_URL: engineUrl,
        ENGINE_POLL_INTERVAL: "100",
        ENGINE_OVERLAP: "5000",
        ENGINE_PROCESS_KEYS: key,
        LOG_LEVEL: "warn",
        PORT: "0",
        METRICS_PORT: "0",
      });
    return { key, applicationName, database, spawn };
  }

  async function createdCount(applicationName: string): Promise<number> {
    const all = await call(broker, "eventstore.readAll", { eventTypes: ["TaskCreated"], limit: 10_000 });
    return all.events.filter((e: any) => e.data.sourceReference.applicationName === applicationName).length;
  }

  it("while it follows changes: misses nothing and doubles nothing", async () => {
    const { key, spawn } = await connectorSetup();
    const start = (n: number) => startInstance(key, `B-${n}`, { n });
    const instances: string[] = [];
    for (let n = 0; n < 5; n++) instances.push(await start(n));
    const taskOf = async (i: number) => (await onlyTaskOf(instances[i]!)).id as string;
    const tasks: string[] = [];
    for (let i = 0; i < 5; i++) tasks.push(await taskOf(i));

    node = spawn();
    await broker.waitForServices(["engineConnector"], 60_000);
    await waitFor(async () => (await Promise.all(tasks.map((t) => types(`task-${t}`)))).every((list) => list.length === 1), 30_000, 100);

    // While it runs: claims, a completion, new instances — then SIGKILL at some moment in the middle.
    await rest("POST", `/task/${tasks[0]}/claim`, { userId: "ann" });
    await rest("POST", `/task/${tasks[1]}/claim`, { userId: "bob" });
    await rest("POST", `/task/${tasks[2]}/complete`, {});
    for (let n = 5; n < 8; n++) instances.push(await start(n));
    for (let i = 5; i < 8; i++) tasks.push(await taskOf(i));
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 150)));
    await node.kill();
    node = undefined;

    // While it is down.
    await rest("POST", `/task/${tasks[5]}/claim`, { userId: "cid" });
    await rest("POST", `/task/${tasks[3]}/complete`, {});
    await rest("DELETE", `/process-instance/${instances[4]}`);
    for (let n = 8; n < 10; n++) instances.push(await start(n));
    for (let i = 8; i < 10; i++) tasks.push(await taskOf(i));

    node = spawn();
    const expected: Record<number, string[][]> = {
      0: [["TaskCreated", "TaskAssigned"]],
      1: [["TaskCreated", "TaskAssigned"]],
      2: [["TaskCreated", "TaskCompleted"]],
      3: [["TaskCreated", "TaskCompleted"]],
      4: [["TaskCreated", "TaskDeleted"]],
      // Claimed while the connector was down: seen before the kill or not, either way exactly one create.
      5: [["TaskCreated", "TaskAssigned"], ["TaskCreated"]],
      6: [["TaskCreated"]],
      7: [["TaskCreated"]],
      8: [["TaskCreated"]],
      9: [["TaskCreated"]],
    };
    const settled = async () => {
      for (let i = 0; i < 10; i++) {
        const list = await types(`task-${tasks[i]}`);
        if (!expected[i]!.some((e) => e.length === list.length)) return false;
      }
      return true;
    };
    await waitFor(settled, 40_000, 100);
    // Give a few more polls the chance to double something.
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 10; i++) {
      const stream = await events(`task-${tasks[i]}`);
      expect(expected[i]).toContainEqual(stream.map((e) => e.type));
    }
    expect((await events(`task-${tasks[5]}`)).reduce((assignee: string | null, e: any) => e.data.assignee ?? assignee, null)).toBe("cid");
    expect((await events(`task-${tasks[0]}`))[1].data.assignee).toBe("ann");

    const instanceTypes = await Promise.all(instances.map((id) => types(`processInstance-${id}`)));
    expect(instanceTypes[2]).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
    expect(instanceTypes[3]).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
    expect(instanceTypes[4]).toEqual(["ProcessInstanceStarted", "ProcessInstanceCancelled"]);
    for (const i of [0, 1, 5, 6, 7, 8, 9]) expect(instanceTypes[i]).toEqual(["ProcessInstanceStarted"]);

    // The restart resumed from its watermarks: it re-sent none of the unchanged tasks.
    const status = await call(broker, "engineConnector.status");
    expect(status.counts.tasks).toMatchObject({ open: 7, completed: 2, deleted: 1 });
    expect(status.feeds.tasks.watermark).not.toBeNull();
    expect(status.counts.commandsSent).toBeLessThan(25);
    // A clean stop: exit code 0, nothing left open.
    const stopping = Date.now();
    expect(await node.stop("SIGTERM")).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(8000);
    node = undefined;
  });

  it("in the middle of its first import: every task once, none missing (state in the database of another application's connector)", async () => {
    const { key, applicationName, spawn } = await connectorSetup(databases[0]);
    const count = 150;
    const instances = await Promise.all(Array.from({ length: count }, (_, n) => startInstance(key, `I-${n}`, { n })));
    const tasks = (await rest<any[]>("POST", "/task?maxResults=1000", { processDefinitionKey: key })).map((t) => t.id as string);
    expect(tasks).toHaveLength(count);

    node = spawn();
    const before = await waitFor(async () => {
      const n = await createdCount(applicationName);
      return n >= 10 ? n : false;
    }, 60_000, 10);
    await node.kill();
    node = undefined;
    const atKill = await createdCount(applicationName);

    // While it is down: some completions and claims, among imported and not yet imported tasks.
    const done = tasks.filter((_, i) => i % 30 === 0);
    const claimed = tasks.filter((_, i) => i % 30 === 15);
    for (const id of done) await rest("POST", `/task/${id}/complete`, {});
    for (const id of claimed) await rest("POST", `/task/${id}/claim`, { userId: "dora" });

    node = spawn();
    await waitFor(async () => {
      for (const id of tasks) {
        const list = await types(`task-${id}`);
        if (list.length === 0) return false;
        if (done.includes(id) && list[list.length - 1] !== "TaskCompleted") return false;
      }
      return true;
    }, 60_000, 200);
    await new Promise((r) => setTimeout(r, 1000));
    for (const id of tasks) {
      const list = await types(`task-${id}`);
      if (done.includes(id)) expect(list).toEqual(["TaskCreated", "TaskCompleted"]);
      else if (claimed.includes(id)) expect([["TaskCreated"], ["TaskCreated", "TaskAssigned"]]).toContainEqual(list);
      else expect(list).toEqual(["TaskCreated"]);
    }
    for (const id of claimed) expect((await events(`task-${id}`)).reduce((a: string | null, e: any) => e.data.assignee ?? a, null)).toBe("dora");
    expect(await createdCount(applicationName)).toBe(count);
    expect(instances).toHaveLength(count);
    // Killed in the middle indeed (not before the first task, not after the last).
    expect(before).toBeGreaterThanOrEqual(10);
    expect(atKill).toBeLessThan(count);
    await node.stop("SIGTERM");
    node = undefined;
  });
});
