// The embedded BPMN engine (stores/engine/embedded-engine.ts, bpmn-engine + camunda-bpmn-moddle): deployments
// and versions, a process with an external service task, user tasks with `camunda:` attributes and `${…}`
// expressions, an exclusive gateway; the external-task outcomes (variables, BPMN error, retries and incident);
// and the engine connector over it, with the platform's event store and command services in this process — the
// same kind of checks as test/integration/engine-connector.test.ts against Operaton, every one on the event
// store's streams. Last, a restart: engine and broker stopped in the middle of processes and started again on
// the same PGlite directories; the waiting tasks are still there, completable, and nothing is lost or doubled.
import { embeddedDatabaseDirectory } from "../../stores/database.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import EventStoreService from "../../services/eventstore.service.ts";
import TaskService from "../../services/task.service.ts";
import ProcessDefinitionService from "../../services/process-definition.service.ts";
import ProcessInstanceService from "../../services/process-instance.service.ts";
import ProcessVariableService from "../../services/process-variable.service.ts";
import { createEngineConnector } from "../../services/engine-connector.service.ts";
import { EmbeddedEngine } from "../../stores/engine/embedded-engine.ts";
import { isEngineError } from "../../engine/connector/engine-adapter.ts";
import { BpmnError, type ExternalTaskInput } from "../../engine/connector/external-tasks.ts";
import { registerEngine, unregisterEngine } from "../../engine/connector/process-engine.ts";
import type { JsonObject } from "../../domain/types.ts";
import { call, startBroker, unique, waitFor, streamReader } from "../helpers.ts";

const quiet = { info() {}, warn() {}, error() {} };
const commandServices = [TaskService, ProcessDefinitionService, ProcessInstanceService, ProcessVariableService];

/**
 * Start → external task (input parameter `auditState`) → approve (candidates, form key, priority, due date from a
 * variable) → gateway on `approveDecision`: APPROVE → intermediate throw event → confirm (assigned `${originator}`)
 * → end; REJECT → end. A BPMN error REJECTED from the external task takes the boundary path to its own end.
 */
function approvalBpmn(key: string, topic: string, versionTag = "v1"): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs_${key}" targetNamespace="http://taskpool.io/test">
  <bpmn:error id="rejectedError" errorCode="REJECTED"/>
  <bpmn:process id="${key}" name="Embedded approval" isExecutable="true" camunda:historyTimeToLive="P1D"
      camunda:candidateStarterUsers="kermit" camunda:candidateStarterGroups="muppetshow, avengers" camunda:versionTag="${versionTag}">
    <bpmn:documentation>Approves a request.</bpmn:documentation>
    <bpmn:startEvent id="start" camunda:formKey="start-approval"/>
    <bpmn:sequenceFlow id="f_load" sourceRef="start" targetRef="load"/>
    <bpmn:serviceTask id="load" name="Load request" camunda:type="external" camunda:topic="${topic}">
      <bpmn:extensionElements>
        <camunda:inputOutput>
          <camunda:inputParameter name="auditState">Submitted</camunda:inputParameter>
        </camunda:inputOutput>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:boundaryEvent id="loadRejected" attachedToRef="load"><bpmn:errorEventDefinition errorRef="rejectedError"/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_load_rejected" sourceRef="loadRejected" targetRef="end_load_rejected"/>
    <bpmn:endEvent id="end_load_rejected"/>
    <bpmn:sequenceFlow id="f_approve" sourceRef="load" targetRef="approve"/>
    <bpmn:userTask id="approve" name="Approve \${subject}" camunda:formKey="approve-request" camunda:candidateUsers="gonzo"
        camunda:candidateGroups="muppetshow" camunda:priority="60" camunda:dueDate="\${approvalDueDate}">
      <bpmn:documentation>Approve or reject the request of \${originator}.</bpmn:documentation>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f_decide" sourceRef="approve" targetRef="decision"/>
    <bpmn:exclusiveGateway id="decision" name="Approved?"/>
    <bpmn:sequenceFlow id="f_approved" sourceRef="decision" targetRef="approved">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">\${approveDecision == "APPROVE"}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_rejected" sourceRef="decision" targetRef="end_rejected">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">\${approveDecision eq 'REJECT'}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:intermediateThrowEvent id="approved" name="Request approved"/>
    <bpmn:sequenceFlow id="f_confirm" sourceRef="approved" targetRef="confirm"/>
    <bpmn:userTask id="confirm" name="Confirm approval" camunda:formKey="confirm" camunda:assignee="\${originator}"/>
    <bpmn:sequenceFlow id="f_end" sourceRef="confirm" targetRef="end_approved"/>
    <bpmn:endEvent id="end_approved"/>
    <bpmn:endEvent id="end_rejected"/>
  </bpmn:process>
</bpmn:definitions>`;
}

/** The load task's handler: reads the request, rejects or fails on demand. */
function loadHandler(calls: ExternalTaskInput[] = []) {
  return async (task: ExternalTaskInput): Promise<JsonObject> => {
    calls.push(task);
    if (task.variables.mode === "reject") throw new BpmnError("REJECTED", "not acceptable", { rejection: "too big" });
    if (task.variables.mode === "fail") throw new Error("the request store is down");
    return { loaded: true, subject: `Request ${task.variables.requestId}`, approvalDueDate: "2030-01-01T10:00:00Z" };
  };
}

async function openTasksOf(engine: EmbeddedEngine, instanceId: string) {
  return (await engine.adapter.listOpenTasks({ firstResult: 0, maxResults: 100, processInstanceId: instanceId })).rows;
}

async function waitForTask(engine: EmbeddedEngine, instanceId: string, taskDefinitionKey: string) {
  return waitFor(async () => (await openTasksOf(engine, instanceId)).find((t) => t.taskDefinitionKey === taskDefinitionKey), 15_000, 20);
}

describe("embedded engine", () => {
  const key = unique("embedded_approval");
  const topic = unique("load");
  const calls: ExternalTaskInput[] = [];
  let engine: EmbeddedEngine;

  beforeAll(async () => {
    engine = new EmbeddedEngine({ applicationName: "embedded-test", pgliteDir: "memory", logger: quiet, externalTasks: { pollIntervalMs: 50 } });
    engine.subscribe(topic, loadHandler(calls), { retries: 2, retryTimeoutMs: 50 });
    await engine.start();
  });
  afterAll(() => engine?.stop());

  it("deploys a changed resource as a new version, and an unchanged one not at all", async () => {
    const first = await engine.deployResources("approval", [{ name: "approval.bpmn", content: approvalBpmn(key, topic) }]);
    expect(first.definitions).toEqual([{ id: expect.stringMatching(new RegExp(`^${key}:1:`)), key, version: 1 }]);
    expect((await engine.deployResources("approval", [{ name: "approval.bpmn", content: approvalBpmn(key, topic) }])).deploymentId).toBeNull();
    const second = await engine.deployResources("approval", [{ name: "approval.bpmn", content: approvalBpmn(key, topic, "v2") }]);
    expect(second.definitions).toMatchObject([{ key, version: 2 }]);
    const deployments = await engine.adapter.listDeploymentsSince({ since: null, firstResult: 0, maxResults: 10 });
    expect(deployments.rows.map((d) => d.id)).toEqual([first.deploymentId, second.deploymentId]);
    const latest = await engine.adapter.listProcessDefinitions({ firstResult: 0, maxResults: 10, processDefinitionKeys: [key], latestVersionOnly: true });
    expect(latest.rows).toEqual([
      {
        id: second.definitions[0]!.id,
        key,
        version: 2,
        name: "Embedded approval",
        versionTag: "v2",
        description: "Approves a request.",
        tenantId: null,
        suspended: false,
        deploymentId: second.deploymentId,
        startFormKey: "start-approval",
        startableInTasklist: true,
        candidateStarterUsers: ["kermit"],
        candidateStarterGroups: ["avengers", "muppetshow"],
      },
    ]);
    await expect(engine.deployResources("broken", [{ name: "broken.bpmn", content: "<definitions" }])).rejects.toMatchObject({ kind: "invalid" });
  });

  it("runs the process: external task with its input parameter, user task attributes from expressions, gateway, assignee from a variable", async () => {
    const { processInstanceId } = await engine.startProcessByKey(key, "BK-1", { requestId: "R-1", originator: "kermit", amount: 100 });
    const approve = await waitForTask(engine, processInstanceId, "approve");
    const input = calls.find((c) => c.processInstanceId === processInstanceId)!;
    expect(input).toMatchObject({ topicName: topic, processDefinitionKey: key, activityId: "load", businessKey: "BK-1", retries: null });
    expect(input.variables).toEqual({ requestId: "R-1", originator: "kermit", amount: 100, auditState: "Submitted" });

    expect(approve).toMatchObject({
      name: "Approve Request R-1",
      description: "Approve or reject the request of kermit.",
      formKey: "approve-request",
      priority: 60,
      assignee: null,
      dueDate: "2030-01-01T10:00:00.000Z",
      lastUpdated: null,
      candidateUsers: ["gonzo"],
      candidateGroups: ["muppetshow"],
    });
    const details = await engine.adapter.loadTaskDetails(approve);
    expect(details!.variables).toEqual({
      requestId: { type: "String", value: "R-1" },
      originator: { type: "String", value: "kermit" },
      amount: { type: "Integer", value: 100 },
      loaded: { type: "Boolean", value: true },
      subject: { type: "String", value: "Request R-1" },
      approvalDueDate: { type: "String", value: "2030-01-01T10:00:00Z" },
    });
    // The input parameter belongs to the external task, not to the process.
    expect(Object.keys(await engine.adapter.getProcessVariables(processInstanceId))).not.toContain("auditState");

    await engine.adapter.claim(approve.id, "gonzo");
    const refused = await engine.adapter.claim(approve.id, "piggy").catch((err) => err);
    expect(isEngineError(refused, "conflict")).toBe(true);
    expect((await engine.adapter.getTask(approve.id))!.lastUpdated).not.toBeNull();

    await engine.adapter.complete(approve.id, { approveDecision: "APPROVE" });
    expect(await engine.adapter.getTask(approve.id)).toBeNull();
    expect(await engine.adapter.getFinishedTask(approve.id)).toMatchObject({ outcome: "completed", deleteReason: "completed", assignee: "gonzo" });
    const confirm = await waitForTask(engine, processInstanceId, "confirm");
    expect(confirm).toMatchObject({ assignee: "kermit", formKey: "confirm", priority: 50 });

    await engine.adapter.complete(confirm.id, {});
    const instance = await engine.adapter.getProcessInstance(processInstanceId);
    expect(instance).toMatchObject({ state: "COMPLETED", businessKey: "BK-1", startActivityId: "start", definitionName: "Embedded approval" });
    expect(instance!.endTime).not.toBeNull();
    const finished = await engine.adapter.listInstancesFinishedSince({ since: instance!.startTime, firstResult: 0, maxResults: 10, processDefinitionKeys: [key] });
    expect(finished.rows.map((i) => i.id)).toContain(processInstanceId);

    const updates = (await engine.adapter.listVariableUpdatesSince({ since: null, firstResult: 0, maxResults: 100, processDefinitionKeys: [key] })).rows.filter(
      (u) => u.processInstanceId === processInstanceId,
    );
    expect(updates.map((u) => [u.kind, u.variableName, u.revision])).toEqual([
      ["create", "requestId", 0],
      ["create", "originator", 0],
      ["create", "amount", 0],
      ["create", "loaded", 0],
      ["create", "subject", 0],
      ["create", "approvalDueDate", 0],
      ["create", "approveDecision", 0],
    ]);
  });

  it("follows the gateway's other path, and keeps a task open when its completion cannot go on (all or nothing)", async () => {
    const { processInstanceId } = await engine.startProcessByKey(key, "BK-2", { requestId: "R-2", originator: "piggy" });
    const approve = await waitForTask(engine, processInstanceId, "approve");
    // Neither condition holds: the step fails and records nothing.
    const failed = await engine.adapter.complete(approve.id, { approveDecision: "MAYBE" }).catch((err) => err);
    expect(isEngineError(failed)).toBe(true);
    expect(await engine.adapter.getTask(approve.id)).not.toBeNull();
    expect(Object.keys(await engine.adapter.getProcessVariables(processInstanceId))).not.toContain("approveDecision");

    await engine.adapter.complete(approve.id, { approveDecision: "REJECT" });
    expect(await openTasksOf(engine, processInstanceId)).toEqual([]);
    expect((await engine.adapter.getProcessInstance(processInstanceId))!.state).toBe("COMPLETED");
  });

  it("takes the boundary error path on a BpmnError, and leaves an incident after the last retry of a failing handler", async () => {
    const rejected = await engine.startProcessByKey(key, "BK-3", { requestId: "R-3", originator: "piggy", mode: "reject" });
    const failing = await engine.startProcessByKey(key, "BK-4", { requestId: "R-4", originator: "piggy", mode: "fail" });
    await waitFor(async () => (await engine.adapter.getProcessInstance(rejected.processInstanceId))?.state === "COMPLETED", 10_000, 20);
    expect((await engine.adapter.getProcessVariables(rejected.processInstanceId)).rejection).toEqual({ type: "String", value: "too big" });
    expect(await openTasksOf(engine, rejected.processInstanceId)).toEqual([]);

    const status = await waitFor(async () => {
      const now = await engine.status();
      return now.incidents.some((i) => i.processInstanceId === failing.processInstanceId) ? now : false;
    }, 10_000, 20);
    expect(status.incidents.find((i) => i.processInstanceId === failing.processInstanceId)).toMatchObject({ topic, activityId: "load", message: "the request store is down" });
    // Two attempts (retries: 2), then the incident; the instance waits at the task.
    expect(calls.filter((c) => c.processInstanceId === failing.processInstanceId).map((c) => c.retries)).toEqual([null, 1]);
    expect((await engine.adapter.getProcessInstance(failing.processInstanceId))!.state).toBe("ACTIVE");
    expect(status.handled).toMatchObject({ bpmnErrors: 1 });
  });

  it("suspends and activates an instance, and cancels one (its task deleted), all visible in the feeds", async () => {
    const { processInstanceId } = await engine.startProcessByKey(key, "BK-5", { requestId: "R-5", originator: "kermit" });
    const approve = await waitForTask(engine, processInstanceId, "approve");
    await engine.suspendInstance(processInstanceId);
    expect((await engine.adapter.getTask(approve.id))!.suspended).toBe(true);
    expect(await engine.adapter.claim(approve.id, "gonzo").catch((err) => err.kind)).toBe("conflict");
    await engine.activateInstance(processInstanceId);
    const operations = await engine.adapter.listInstanceOperationsSince({ since: null, firstResult: 0, maxResults: 10, processDefinitionKeys: [key] });
    expect(operations.rows.filter((o) => o.processInstanceId === processInstanceId).map((o) => o.operation)).toEqual(["Suspend", "Activate"]);

    await engine.cancelInstance(processInstanceId, "withdrawn");
    expect(await engine.adapter.getFinishedTask(approve.id)).toMatchObject({ outcome: "deleted", deleteReason: "withdrawn" });
    expect(await engine.adapter.getProcessInstance(processInstanceId)).toMatchObject({ state: "EXTERNALLY_TERMINATED", deleteReason: "withdrawn" });
    expect(await engine.adapter.findInstancesByVariable("requestId", "R-5")).toEqual([processInstanceId]);
  });
});

// The engine connector over the embedded engine ------------------------------------------------------------------------

describe("engine connector over the embedded engine (in process, polling on sync)", () => {
  const key = unique("embedded_connector");
  const topic = unique("load");
  const applicationName = unique("embedded-app");
  let engine: EmbeddedEngine;
  let broker: ServiceBroker;

  const { events, types, waitForTypes } = streamReader(() => broker);
  const sync = (reconcile = false) => call(broker, "engineConnector.sync", { reconcile });

  beforeAll(async () => {
    engine = new EmbeddedEngine({ applicationName, pgliteDir: "memory", logger: quiet, externalTasks: { pollIntervalMs: 50 } });
    engine.subscribe(topic, loadHandler(), { retries: 2, retryTimeoutMs: 50 });
    await engine.start();
    await engine.deploy(applicationName, [{ name: `${key}.bpmn`, content: approvalBpmn(key, topic) }]);
    broker = await startBroker([
      { ...EventStoreService, settings: { pgliteDir: "memory" } },
      ...commandServices,
      createEngineConnector({
        env: {},
        // This process is started from the pool below too: its start form is configured optional.
        settings: { applicationName, pgliteDir: "memory", autoPoll: false, overlapMs: 5000, reconcileIntervalMs: 0, directStartKeys: [key] },
        adapter: engine.adapter,
        processor: { pollIntervalMs: 200, leaseMs: 2000 },
      }),
    ]);
  });

  afterAll(async () => {
    await broker?.stop();
    await engine?.stop();
  });

  it("registers the process definition with its candidate starters, and reports a new task with payload and candidates and its instance", async () => {
    const status = await sync();
    expect(status.engine).toMatchObject({ product: "bpmn-engine (embedded)", reachable: true });
    const [definition] = (await engine.adapter.listProcessDefinitions({ firstResult: 0, maxResults: 10, processDefinitionKeys: [key] })).rows;
    expect((await events(`processDefinition-${definition!.id}`)).map((e) => [e.type, e.data])).toEqual([
      [
        "ProcessDefinitionRegistered",
        {
          processDefinitionId: definition!.id,
          processDefinitionKey: key,
          processDefinitionVersion: 1,
          applicationName,
          processName: "Embedded approval",
          processVersionTag: "v1",
          processDescription: "Approves a request.",
          formKey: "start-approval",
          startsThroughForm: false,
          startableFromTasklist: true,
          candidateStarterUsers: ["kermit"],
          candidateStarterGroups: ["avengers", "muppetshow"],
        },
      ],
    ]);

    const { processInstanceId } = await engine.startProcessByKey(key, "BK-1", { requestId: "R-1", originator: "kermit", amount: 100 });
    const approve = await waitForTask(engine, processInstanceId, "approve");
    await sync();
    const created = await events(`task-${approve.id}`);
    expect(created.map((e) => e.type)).toEqual(["TaskCreated"]);
    expect(created[0].data).toMatchObject({
      id: approve.id,
      taskDefinitionKey: "approve",
      name: "Approve Request R-1",
      formKey: "approve-request",
      businessKey: "BK-1",
      priority: 60,
      assignee: null,
      dueDate: "2030-01-01T10:00:00.000Z",
      candidateUsers: ["gonzo"],
      candidateGroups: ["muppetshow"],
      payload: { requestId: "R-1", originator: "kermit", amount: 100, loaded: true, subject: "Request R-1" },
      sourceReference: { type: "process", instanceId: processInstanceId, definitionKey: key, name: "Embedded approval", applicationName },
    });
    expect(await types(`processInstance-${processInstanceId}`)).toEqual(["ProcessInstanceStarted"]);
    expect((await events(`processVariables-${processInstanceId}`)).map((e) => e.type)).toContain("ProcessVariablesChanged");
    // Nothing new on the next poll.
    const before = (await sync()).counts.commandsSent;
    expect((await sync()).counts.commandsSent).toBe(before);
  });

  it("performs a claim in the engine (TaskAssigned) and reports a refused one as TaskInteractionRefused", async () => {
    const { processInstanceId } = await engine.startProcessByKey(key, "BK-2", { requestId: "R-2", originator: "piggy" });
    const approve = await waitForTask(engine, processInstanceId, "approve");
    await sync();
    await call(broker, "task.claim", { id: approve.id, assignee: "gonzo" });
    await waitForTypes(`task-${approve.id}`, ["TaskCreated", "TaskClaimed", "TaskAssigned"]);
    expect((await engine.adapter.getTask(approve.id))!.assignee).toBe("gonzo");

    const other = await engine.startProcessByKey(key, "BK-3", { requestId: "R-3", originator: "piggy" });
    const task = await waitForTask(engine, other.processInstanceId, "approve");
    await sync();
    // Claimed directly in the engine; the pool does not know yet.
    await engine.adapter.claim(task.id, "piggy");
    await call(broker, "task.claim", { id: task.id, assignee: "gonzo" });
    await waitForTypes(`task-${task.id}`, ["TaskCreated", "TaskClaimed", "TaskInteractionRefused", "TaskAssigned"]);
    const stream = await events(`task-${task.id}`);
    expect(stream[2].data).toMatchObject({ interaction: "claim", username: "gonzo" });
    expect(stream[2].data.reason).toMatch(/already claimed by piggy/);
    expect(stream[3].data.assignee).toBe("piggy");
  });

  it("completes with { approveDecision: APPROVE }: the process follows the gateway, the next task (assigned by ${originator}) appears at once, then the instance finishes", async () => {
    const { processInstanceId } = await engine.startProcessByKey(key, "BK-4", { requestId: "R-4", originator: "kermit" });
    const approve = await waitForTask(engine, processInstanceId, "approve");
    await sync();
    await call(broker, "task.requestCompletion", { id: approve.id, assignee: "fozzie", payload: { approveDecision: "APPROVE" } });
    await waitForTypes(`task-${approve.id}`, ["TaskCreated", "TaskClaimed", "TaskToBeCompleted", "TaskAssigned", "TaskCompleted"]);
    expect((await engine.adapter.getFinishedTask(approve.id))!.assignee).toBe("fozzie");

    const confirm = await waitForTask(engine, processInstanceId, "confirm");
    await waitForTypes(`task-${confirm.id}`, ["TaskCreated"]);
    expect((await events(`task-${confirm.id}`))[0].data).toMatchObject({ taskDefinitionKey: "confirm", assignee: "kermit", payload: { approveDecision: "APPROVE" } });

    await call(broker, "task.requestCompletion", { id: confirm.id, payload: {} });
    await waitForTypes(`task-${confirm.id}`, ["TaskCreated", "TaskToBeCompleted", "TaskCompleted"]);
    await sync();
    expect(await types(`processInstance-${processInstanceId}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
  });

  it("reports a task created and completed between two polls as created, then completed; and a cancelled instance", async () => {
    const quick = await engine.startProcessByKey(key, "BK-5", { requestId: "R-5", originator: "kermit" });
    const task = await waitForTask(engine, quick.processInstanceId, "approve");
    await engine.adapter.claim(task.id, "animal");
    await engine.adapter.complete(task.id, { approveDecision: "REJECT" });
    const cancelled = await engine.startProcessByKey(key, "BK-6", { requestId: "R-6", originator: "kermit" });
    const doomed = await waitForTask(engine, cancelled.processInstanceId, "approve");
    await sync();
    await engine.cancelInstance(cancelled.processInstanceId);
    await sync();
    expect(await types(`task-${task.id}`)).toEqual(["TaskCreated", "TaskCompleted"]);
    expect((await events(`task-${task.id}`))[1].data.assignee).toBe("animal");
    expect(await types(`processInstance-${quick.processInstanceId}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
    expect(await types(`task-${doomed.id}`)).toEqual(["TaskCreated", "TaskDeleted"]);
    expect(await types(`processInstance-${cancelled.processInstanceId}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceCancelled"]);
  });

  it("starts a process on a user's request, once, and reports its instance and first task", async () => {
    const [definition] = (await engine.adapter.listProcessDefinitions({ firstResult: 0, maxResults: 10, processDefinitionKeys: [key], latestVersionOnly: true })).rows;
    const requestId = unique("request");
    await call(broker, "processDefinition.requestStart", {
      processDefinitionId: definition!.id,
      requestedBy: "kermit",
      requestId,
      businessKey: "BK-7",
      variables: { requestId: "R-7", originator: "kermit" },
    });
    const [instanceId] = await waitFor(async () => {
      const found = await engine.adapter.findInstancesByVariable("taskpoolRequestId", requestId);
      return found.length > 0 ? found : false;
    }, 10_000);
    await waitForTypes(`processInstance-${instanceId}`, ["ProcessInstanceStarted"]);
    const approve = await waitForTask(engine, instanceId!, "approve");
    await sync();
    expect((await events(`task-${approve.id}`))[0].data).toMatchObject({ businessKey: "BK-7", payload: { requestId: "R-7", taskpoolRequestId: requestId } });
    expect(await engine.adapter.findInstancesByVariable("taskpoolRequestId", requestId)).toHaveLength(1);
  });

  it("reports a start the engine refuses as ProcessStartRefused, naming the requester and the engine's reason", async () => {
    // A definition the pool knows but the engine does not (undeployed meanwhile, say): the engine refuses.
    const processDefinitionId = `${key}:99:gone`;
    await call(broker, "processDefinition.register", {
      processDefinitionId,
      processDefinitionKey: key,
      processDefinitionVersion: 99,
      applicationName,
      processName: "Embedded approval",
      startableFromTasklist: true,
      candidateStarterGroups: ["muppetshow"],
    });
    const requestId = unique("request");
    await call(broker, "processDefinition.requestStart", { processDefinitionId, requestedBy: "piggy", requestId, variables: {} });
    await waitForTypes(`processDefinition-${processDefinitionId}`, ["ProcessDefinitionRegistered", "ProcessStartRequested", "ProcessStartRefused"]);
    const refused = (await events(`processDefinition-${processDefinitionId}`))[2];
    expect(refused.data).toEqual({ processDefinitionId, processDefinitionKey: key, applicationName, requestId, requestedBy: "piggy", reason: "the process definition does not exist" });
    expect(await call(broker, "processDefinition.startRequest", { processDefinitionId, requestId })).toMatchObject({ requestedBy: "piggy", status: "refused", reason: "the process definition does not exist" });
  });

  it("changes nothing on a full reconciliation when everything is in step", async () => {
    await sync();
    const before = await call(broker, "engineConnector.status");
    const after = await sync(true);
    expect(after.reconciliations).toBe(before.reconciliations + 1);
    expect(after.counts.commandsSent).toBe(before.counts.commandsSent);
  });
});

// Restart ----------------------------------------------------------------------------------------------------------------

describe("embedded engine and platform stopped in the middle and started again on the same PGlite directories", () => {
  const key = unique("embedded_restart");
  const topic = unique("load");
  const applicationName = unique("restart-app");
  const dir = mkdtempSync(join(tmpdir(), "taskpool-embedded-"));
  let engine: EmbeddedEngine | null = null;
  let broker: ServiceBroker | null = null;

  afterAll(async () => {
    await broker?.stop();
    if (engine) {
      unregisterEngine(applicationName, engine);
      await engine.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function startEngine(): Promise<EmbeddedEngine> {
    const started = new EmbeddedEngine({ applicationName, pgliteDir: embeddedDatabaseDirectory(dir), logger: quiet, externalTasks: { pollIntervalMs: 50 } });
    started.subscribe(topic, loadHandler(), { retries: 2, retryTimeoutMs: 50 });
    await started.start();
    return started;
  }

  /** The platform with the connector in its default embedded form: no adapter, no engine URL — the registered engine. */
  function startPlatform(): Promise<ServiceBroker> {
    return startBroker([
      { ...EventStoreService, settings: { pgliteDir: embeddedDatabaseDirectory(dir) } },
      ...commandServices,
      createEngineConnector({
        env: {},
        settings: { applicationName, pgliteDir: embeddedDatabaseDirectory(dir), pollIntervalMs: 100, overlapMs: 5000, reconcileIntervalMs: 0 },
        processor: { pollIntervalMs: 200, leaseMs: 2000 },
      }),
    ]);
  }

  const events = async (streamId: string): Promise<any[]> => (await call(broker!, "eventstore.readStream", { streamId, allowEmpty: true })).events;
  const types = async (streamId: string): Promise<string[]> => (await events(streamId)).map((e) => e.type);
  const waitForTypes = (streamId: string, expected: string[], timeoutMs = 20_000) =>
    waitFor(async () => {
      const actual = await types(streamId);
      return actual.length >= expected.length ? actual : false;
    }, timeoutMs, 50).then((actual) => expect(actual).toEqual(expected));

  it("keeps the waiting tasks, completes them after the restart, and neither loses nor doubles an event", async () => {
    engine = await startEngine();
    await engine.deploy(applicationName, [{ name: `${key}.bpmn`, content: approvalBpmn(key, topic) }]);
    // The platform may come up first: the connector waits for the application to register its engine.
    const platform = startPlatform();
    await new Promise((resolve) => setTimeout(resolve, 300));
    registerEngine(applicationName, engine);
    broker = await platform;

    const instances: string[] = [];
    for (const n of [1, 2, 3]) instances.push((await engine.startProcessByKey(key, `BK-${n}`, { requestId: `R-${n}`, originator: "kermit" })).processInstanceId);
    const [a, b, c] = await Promise.all(instances.map((id) => waitForTask(engine!, id, "approve")));
    for (const task of [a!, b!, c!]) await waitForTypes(`task-${task.id}`, ["TaskCreated"]);
    await call(broker, "task.claim", { id: a!.id, assignee: "gonzo" });
    await waitForTypes(`task-${a!.id}`, ["TaskCreated", "TaskClaimed", "TaskAssigned"]);
    await call(broker, "task.requestCompletion", { id: b!.id, assignee: "gonzo", payload: { approveDecision: "APPROVE" } });
    await waitForTypes(`task-${b!.id}`, ["TaskCreated", "TaskClaimed", "TaskToBeCompleted", "TaskAssigned", "TaskCompleted"]);
    const bConfirm = await waitForTask(engine, instances[1]!, "confirm");
    await waitForTypes(`task-${bConfirm.id}`, ["TaskCreated"]);

    // Stop everything in the middle of three processes.
    await broker.stop();
    broker = null;
    unregisterEngine(applicationName, engine);
    await engine.stop();

    // The engine alone, while the platform is down: one task completed directly, one instance started.
    engine = await startEngine();
    expect((await engine.adapter.getTask(a!.id))!.assignee).toBe("gonzo");
    await engine.adapter.complete(c!.id, { approveDecision: "REJECT" });
    const d = (await engine.startProcessByKey(key, "BK-4", { requestId: "R-4", originator: "piggy" })).processInstanceId;
    const dApprove = await waitForTask(engine, d, "approve");

    registerEngine(applicationName, engine);
    broker = await startPlatform();
    await waitForTypes(`task-${c!.id}`, ["TaskCreated", "TaskCompleted"]);
    await waitForTypes(`task-${dApprove.id}`, ["TaskCreated"]);

    // The waiting tasks are still there and completable through the pool.
    await call(broker, "task.requestCompletion", { id: a!.id, payload: { approveDecision: "APPROVE" } });
    await waitForTypes(`task-${a!.id}`, ["TaskCreated", "TaskClaimed", "TaskAssigned", "TaskToBeCompleted", "TaskCompleted"]);
    const aConfirm = await waitForTask(engine, instances[0]!, "confirm");
    await waitForTypes(`task-${aConfirm.id}`, ["TaskCreated"]);
    await call(broker, "task.requestCompletion", { id: bConfirm.id, payload: {} });
    await waitForTypes(`task-${bConfirm.id}`, ["TaskCreated", "TaskToBeCompleted", "TaskCompleted"]);
    await waitForTypes(`processInstance-${instances[1]}`, ["ProcessInstanceStarted", "ProcessInstanceFinished"]);

    // A few more polls to give a double a chance, then the exact streams.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await types(`task-${a!.id}`)).toEqual(["TaskCreated", "TaskClaimed", "TaskAssigned", "TaskToBeCompleted", "TaskCompleted"]);
    expect(await types(`task-${b!.id}`)).toEqual(["TaskCreated", "TaskClaimed", "TaskToBeCompleted", "TaskAssigned", "TaskCompleted"]);
    expect(await types(`task-${c!.id}`)).toEqual(["TaskCreated", "TaskCompleted"]);
    expect(await types(`task-${bConfirm.id}`)).toEqual(["TaskCreated", "TaskToBeCompleted", "TaskCompleted"]);
    expect(await types(`task-${aConfirm.id}`)).toEqual(["TaskCreated"]);
    expect(await types(`task-${dApprove.id}`)).toEqual(["TaskCreated"]);
    expect(await types(`processInstance-${instances[0]}`)).toEqual(["ProcessInstanceStarted"]);
    expect(await types(`processInstance-${instances[1]}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
    expect(await types(`processInstance-${instances[2]}`)).toEqual(["ProcessInstanceStarted", "ProcessInstanceFinished"]);
    expect(await types(`processInstance-${d}`)).toEqual(["ProcessInstanceStarted"]);
    const created = (await call(broker, "eventstore.readAll", { eventTypes: ["TaskCreated"], limit: 10_000 })).events.filter(
      (e: any) => e.data.sourceReference.applicationName === applicationName,
    );
    expect(created.map((e: any) => e.data.id).sort()).toEqual([a!.id, b!.id, c!.id, bConfirm.id, aConfirm.id, dApprove.id].sort());
  });
});
