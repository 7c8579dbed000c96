// The REST API end to end, driven as the example users would: once on the embedded platform in this process,
// once as a cluster of separate processes over the real NATS server with the view on FerretDB.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { SignJWT, importPKCS8 } from "jose";
import { MongoViewStore } from "../../view/stores/mongo-store.ts";
import { TaskpoolPrometheusReporter } from "../../lib/metrics.ts";
import { call, freePort, spawnNode, startBroker, testDatabaseUrl, testMongoUrl, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";
import { embeddedPlatform } from "../platform.ts";
import FormsApp from "../fixtures/forms-app.service.ts";

const HS_SECRET = "an HS256 secret of the test, long enough for jose";
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });

function sourceReference(applicationName: string) {
  return { type: "process", instanceId: `pi-${applicationName}`, executionId: "ex", definitionId: "def:1", definitionKey: "def", name: "Request Approval", applicationName };
}


/** A Server-Sent Events client over fetch (Node has no EventSource): collects events until closed. */
function openEvents(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const events: { id: string; event: string; data: any }[] = [];
  const ready = fetch(url, { headers: { Accept: "text/event-stream", ...headers }, signal: controller.signal }).then(async (response) => {
    if (response.status !== 200) throw new Error(`event stream answered ${response.status}`);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const fields: Record<string, string> = {};
            for (const line of block.split("\n")) {
              const m = /^(\w+): ?(.*)$/.exec(line);
              if (m) fields[m[1]!] = m[2]!;
            }
            if (fields.event && fields.data) events.push({ id: fields.id ?? "", event: fields.event, data: JSON.parse(fields.data) });
          }
        }
      } catch {
        /* closed */
      }
    })();
  });
  return { events, ready, close: () => controller.abort() };
}

interface Platform {
  baseUrl: string;
  /** Credentials of a member of the operator group (a JWT key is configured: /metrics needs one). */
  operator(): Promise<Record<string, string>>;
  command(action: string, params: object): Promise<any>;
  stream(streamId: string): Promise<any[]>;
}

/** The scenario both platforms must pass. */
function scenario(platform: () => Platform) {
  const as = (user: string) => ({ "X-Current-User-ID": user });
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${platform().baseUrl}${path}`, { headers });
  const post = (path: string, headers: Record<string, string>, body?: unknown) =>
    fetch(`${platform().baseUrl}${path}`, {
      method: "POST",
      headers: { ...headers, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const waitForTask = (user: string, id: string) =>
    waitFor(async () => {
      const response = await get(`/api/tasks?filters=task.id=${id}`, as(user));
      const body = await response.json();
      return body.length === 1 ? body[0] : undefined;
    }, 15_000, 50);

  it("shows tasks created through commands only to their candidates, and live to exactly them", async () => {
    const kermitEvents = openEvents(`${platform().baseUrl}/api/events`, as("kermit"));
    const ironmanEvents = openEvents(`${platform().baseUrl}/api/events`, as("ironman"));
    await Promise.all([kermitEvents.ready, ironmanEvents.ready]);

    await platform().command("dataEntry.createOrUpdate", {
      entryType: "io.taskpool.example.ApprovalRequest",
      entryId: "api-1",
      type: "Approval Request",
      applicationName: "example-process-approval",
      name: "Salary raise for kermit",
      state: { processingType: "IN_PROGRESS", state: "Submitted" },
      payload: { amount: 1000 },
      authorizationChanges: [{ kind: "AddGroup", name: "muppetshow" }],
      modification: { time: "2026-11-23T10:00:00Z", username: "kermit", log: "Submitted" },
    });
    await platform().command("task.create", {
      id: "api-t1",
      sourceReference: sourceReference("example-process-approval"),
      taskDefinitionKey: "user_approve_request",
      name: "Approve Request",
      formKey: "approve-request",
      candidateGroups: ["muppetshow"],
      candidateUsers: ["fozzy"],
      priority: 23,
      payload: { amount: 1000, subject: "Salary raise" },
      correlations: { "io.taskpool.example.ApprovalRequest": "api-1" },
    });
    const { task, dataEntries } = await waitForTask("kermit", "api-t1");
    expect(task).toMatchObject({ id: "api-t1", name: "Approve Request", processName: "Request Approval", candidateGroups: ["muppetshow"], priority: 23, payload: { amount: 1000 } });
    // The user is handed over: the client fills in %userId% (Polyflow's placeholder).
    expect(task.url).toBe("http://localhost:8080/forms/#/tasks/approve-request/api-t1?userId=%userId%");
    expect(dataEntries.map((d: any) => [d.entryId, d.currentState, d.protocol[0].user])).toEqual([["api-1", "Submitted", "kermit"]]);

    const forIronman = await get("/api/tasks", as("ironman"));
    expect(forIronman.headers.get("x-elementcount")).toBe("0");
    expect(await forIronman.json()).toEqual([]);
    const forPiggy = await get("/api/tasks", as("piggy"));
    expect(forPiggy.headers.get("x-elementcount")).toBe("1");

    await waitFor(() => kermitEvents.events.some((e) => e.event === "task-added" && e.data.id === "api-t1"), 10_000);
    expect(kermitEvents.events.some((e) => e.event === "data-entry-changed" && e.data.id === "io.taskpool.example.ApprovalRequest#api-1")).toBe(true);
    // ironman sees neither: give the change time to reach him, then look.
    await new Promise((r) => setTimeout(r, 500));
    expect(ironmanEvents.events.filter((e) => e.data.id === "api-t1" || e.data.id.includes("api-1"))).toEqual([]);

    // A task that is not visible answers exactly as one that does not exist.
    // EventSource in a browser cannot send headers: the stream takes the user from the query string too.
    const viaQuery = openEvents(`${platform().baseUrl}/api/events?user=kermit`, {});
    await viaQuery.ready;
    viaQuery.close();
    const hidden = await get("/api/task/api-t1", as("ironman"));
    const missing = await get("/api/task/does-not-exist", as("ironman"));
    expect([hidden.status, missing.status]).toEqual([404, 404]);
    expect((await hidden.json()).type).toBe("NOT_FOUND");
    expect((await post("/api/task/api-t1/claim", as("ironman"))).status).toBe(404);

    kermitEvents.close();
    ironmanEvents.close();
  });

  it("answers a list asked again from its kept answer while the view stands still, and never a stale one", async () => {
    // The gateway keeps each list answer with the view version it came from (gateway/answer-cache.ts).
    const list = async (path: string) => {
      const response = await get(path, as("piggy"));
      return { total: response.headers.get("x-elementcount"), type: response.headers.get("content-type"), body: await response.text() };
    };
    const first = await list("/api/tasks");
    expect(first.type).toBe("application/json; charset=utf-8");
    expect(await list("/api/tasks")).toEqual(first);
    const entries = await list("/api/business-data-entries");
    expect(await list("/api/business-data-entries")).toEqual(entries);
    // A change the caller may see: the same question answers anew, with it.
    await platform().command("task.create", {
      id: "api-kept-1",
      sourceReference: sourceReference("example-process-approval"),
      taskDefinitionKey: "user_approve_request",
      name: "Approve Request",
      candidateUsers: ["piggy"],
      payload: { amount: 7 },
    });
    await platform().command("dataEntry.createOrUpdate", {
      entryType: "io.taskpool.example.ApprovalRequest",
      entryId: "api-kept-1",
      type: "Approval Request",
      applicationName: "example-process-approval",
      name: "Kept answers",
      state: { processingType: "IN_PROGRESS", state: "Submitted" },
      payload: { amount: 7 },
      authorizationChanges: [{ kind: "AddUser", name: "piggy" }],
      modification: { time: "2026-11-23T10:00:00Z", username: "piggy", log: "Submitted" },
    });
    const after = await waitFor(async () => {
      const answer = await list("/api/tasks");
      return answer.body.includes('"api-kept-1"') ? answer : undefined;
    }, 15_000, 50);
    expect(Number(after.total)).toBe(Number(first.total) + 1);
    const entriesAfter = await waitFor(async () => {
      const answer = await list("/api/business-data-entries");
      return answer.body.includes('"entryId":"api-kept-1"') ? answer : undefined;
    }, 15_000, 50);
    expect(Number(entriesAfter.total)).toBe(Number(entries.total) + 1);
    // Another caller asking the same is another question: ironman does not get piggy's answer.
    expect((await (await get("/api/tasks", as("ironman"))).text()).includes("api-kept-1")).toBe(false);
    // The task goes away: the list asked again no longer holds it.
    await platform().command("task.complete", { id: "api-kept-1", assignee: "piggy" });
    await waitFor(async () => !(await list("/api/tasks")).body.includes('"api-kept-1"'), 15_000, 50);
  });

  it("turns claim, defer and complete into interaction events for the owning engine", async () => {
    expect((await post("/api/task/api-t1/claim", as("kermit"))).status).toBe(204);
    expect((await post("/api/task/api-t1/defer", as("kermit"), "2027-01-15T09:00:00Z")).status).toBe(204);
    expect((await post("/api/task/api-t1/undefer", as("kermit"))).status).toBe(204);
    expect((await post("/api/task/api-t1/complete", as("kermit"), { approveDecision: "APPROVE" })).status).toBe(204);
    const events = (await platform().stream("task-api-t1")).slice(0, 6);
    // The task is still unassigned (the engine has not reported the claim), so completing it as kermit claims it
    // for kermit first.
    expect(events.map((e) => e.type)).toEqual(["TaskCreated", "TaskClaimed", "TaskDeferred", "TaskUndeferred", "TaskClaimed", "TaskToBeCompleted"]);
    expect(events[1].data).toMatchObject({ assignee: "kermit", sourceReference: { applicationName: "example-process-approval" } });
    expect(events[2].data).toMatchObject({ followUpDate: "2027-01-15T09:00:00.000Z" });
    expect(events[5].data).toMatchObject({ payload: { approveDecision: "APPROVE" }, assignee: "kermit" });

    // With ?wait=true the answer waits for the effect; an interaction's effect comes from the engine, which this
    // test does not run: so the gateway says 202, accepted but not visible yet.
    const waited = await post("/api/task/api-t1/claim?wait=true", as("kermit"));
    expect(waited.status).toBe(202);
    expect(await waited.json()).toMatchObject({ status: "ACCEPTED" });
    // The engine reports back (here: the test in its place) and the effect becomes visible.
    const assigned = await platform().command("task.assign", { id: "api-t1", assignee: "piggy" });
    const piggysTask = await waitFor(async () => {
      const body = await (await get(`/api/tasks?filters=task.assignee=piggy`, as("piggy"))).json();
      return body.find((e: any) => e.task.id === "api-t1");
    }, 10_000);
    expect(piggysTask.task.assignee).toBe("piggy");
    expect(assigned.events).toEqual(["TaskAssigned"]);
    const claimed = await post("/api/task/api-t1/claim?wait=true", as("piggy"));
    expect(claimed.status).toBe(204);
  });

  it("serves data entries, processes and the profile", async () => {
    const entries = await get("/api/business-data-entries?sort=-name", as("gonzo"));
    expect(entries.headers.get("x-elementcount")).toBe("1");
    expect((await entries.json())[0]).toMatchObject({ entryId: "api-1", currentStateType: "IN_PROGRESS", url: "http://localhost:8080/forms/#/approval-request/api-1?userId=%userId%" });
    const one = await get("/api/business-data-entries/io.taskpool.example.ApprovalRequest/api-1", as("gonzo"));
    expect(one.status).toBe(200);
    expect((await get("/api/business-data-entries/io.taskpool.example.ApprovalRequest/api-1", as("hulk"))).status).toBe(404);

    await platform().command("processDefinition.register", {
      processDefinitionId: "process_approve_request:1:api",
      processDefinitionKey: "process_approve_request",
      processDefinitionVersion: 1,
      applicationName: "example-process-approval",
      processName: "Request Approval",
      candidateStarterGroups: ["muppetshow", "avengers"],
      formKey: "start-approval",
    });
    const processes = await waitFor(async () => {
      const body = await (await get("/api/processes", as("hulk"))).json();
      return body.length > 0 ? body : undefined;
    }, 10_000);
    expect(processes[0]).toMatchObject({
      definitionKey: "process_approve_request",
      definitionVersion: "1",
      applicationName: "example-process-approval",
      candidateGroups: ["avengers", "muppetshow"],
      startsThroughForm: true,
      url: "http://localhost:8080/forms/#/start?userId=%userId%",
    });
    // It needs its start form: a direct start is refused, saying why.
    const direct = await post("/api/processes/example-process-approval/process_approve_request/start", as("hulk"), { businessKey: "BK-1", variables: { subject: "Armor" } });
    expect(direct.status).toBe(409);
    expect(await direct.json()).toMatchObject({ type: "CONFLICT", message: 'Request Approval (process_approve_request) starts through its start form "start-approval": open the form to start it' });

    await platform().command("processDefinition.register", {
      processDefinitionId: "process_quick_note:1:api",
      processDefinitionKey: "process_quick_note",
      processDefinitionVersion: 1,
      applicationName: "example-process-approval",
      processName: "Quick note",
      candidateStarterGroups: ["avengers"],
    });
    await waitFor(async () => (await (await get("/api/processes", as("hulk"))).json()).some((p: any) => p.definitionKey === "process_quick_note" && p.startsThroughForm === false), 10_000);
    const started = await post("/api/processes/example-process-approval/process_quick_note/start", as("hulk"), { businessKey: "BK-1", variables: { subject: "Armor" } });
    expect(started.status).toBe(202);
    const { requestId, status } = await started.json();
    const requested = await platform().stream("processDefinition-process_quick_note:1:api");
    expect(requested.at(-1)).toMatchObject({ type: "ProcessStartRequested", data: { requestedBy: "hulk", requestId, businessKey: "BK-1", variables: { subject: "Armor" } } });
    expect(status).toBe(`/api/process-starts/process_quick_note%3A1%3Aapi/${requestId}`);
    expect(await (await get(status, as("hulk"))).json()).toMatchObject({ requestId, status: "requested", requestedBy: "hulk", reason: null });
    expect((await get(status, as("ironman"))).status).toBe(404);

    // The application's connector reports that its engine refused the start (the action it calls, called here
    // as it would): the requester learns it live and through the API; another starter does not.
    const hulkEvents = openEvents(`${platform().baseUrl}/api/events`, as("hulk"));
    const ironmanEvents = openEvents(`${platform().baseUrl}/api/events`, as("ironman"));
    await Promise.all([hulkEvents.ready, ironmanEvents.ready]);
    await platform().command("processDefinition.reportStartRefused", { processDefinitionId: "process_quick_note:1:api", requestId, requestedBy: "hulk", reason: "the process definition is suspended" });
    const live = await waitFor(() => hulkEvents.events.find((e) => e.event === "process-start-refused"), 10_000);
    expect(live.data).toMatchObject({ processDefinitionId: "process_quick_note:1:api", requestId, reason: "the process definition is suspended" });
    expect(await (await get(status, as("hulk"))).json()).toMatchObject({ requestId, status: "refused", reason: "the process definition is suspended" });
    await new Promise((r) => setTimeout(r, 300));
    expect(ironmanEvents.events.some((e) => e.event === "process-start-refused")).toBe(false);
    hulkEvents.close();
    ironmanEvents.close();
    expect((await post("/api/processes/example-process-approval/nope/start", as("hulk"), {})).status).toBe(404);

    expect(await (await get("/api/profile", as("kermit"))).json()).toMatchObject({ username: "kermit", groups: ["muppetshow"] });
    expect((await (await get("/api/users")).json()).map((u: any) => u.id)).toEqual(["ironman", "hulk", "piggy", "kermit", "gonzo", "fozzy"]);
  });

  it("answers bad requests with typed errors and nothing internal is reachable", async () => {
    const noUser = await get("/api/tasks");
    expect(noUser.status).toBe(401);
    expect((await noUser.json()).type).toBe("UNAUTHORIZED");
    expect((await get("/api/tasks", as("darth"))).status).toBe(401);

    const badFilter = await get("/api/tasks?filters=task.nope=1", as("kermit"));
    expect(badFilter.status).toBe(400);
    expect(await badFilter.json()).toMatchObject({ type: "VALIDATION_ERROR", data: [{ field: "filters", index: 0 }] });
    const badSize = await get("/api/tasks?size=500", as("kermit"));
    expect(badSize.status).toBe(400);
    expect((await badSize.json()).data[0].field).toBe("query.size");
    const badDate = await post("/api/task/api-t1/defer", as("kermit"), "next week");
    expect(badDate.status).toBe(400);
    expect((await badDate.json()).data[0].field).toBe("body");

    for (const path of [
      "/api/~node/list",
      "/~node/list",
      "/api/$node/list",
      "/api/node/list",
      "/api/view/allTasks",
      "/api/view/tasksForUser",
      "/api/task/create",
      "/api/task.create",
      "/api/eventstore/head",
      "/api/eventstore/readAll",
      "/api/api/tasks",
      "/api/nothing-here",
      "/nothing-here",
    ]) {
      const response = await get(path, as("kermit"));
      expect(response.status, path).toBe(404);
      expect((await response.json()).type, path).toBe("NOT_FOUND");
      // "/api/task/create" is the address of a task with id "create" (GET /api/task/{id}): a POST there is 405.
      const posted = await post(path, as("kermit"), {});
      expect(posted.status, `POST ${path}`).toBe(path === "/api/task/create" ? 405 : 404);
    }
  });

  it("resumes the event stream from Last-Event-ID without losing a change", async () => {
    const first = openEvents(`${platform().baseUrl}/api/events`, as("fozzy"));
    await first.ready;
    await platform().command("task.create", { id: "api-t2", sourceReference: sourceReference("other"), taskDefinitionKey: "t", candidateUsers: ["fozzy"] });
    await waitFor(() => first.events.find((e) => e.data.id === "api-t2"), 10_000);
    const lastId = first.events.at(-1)!.id;
    first.close();
    // While fozzy is away, two more changes happen.
    await platform().command("task.create", { id: "api-t3", sourceReference: sourceReference("other"), taskDefinitionKey: "t", candidateUsers: ["fozzy"] });
    await platform().command("task.complete", { id: "api-t2" });
    await new Promise((r) => setTimeout(r, 1000));
    const resumed = openEvents(`${platform().baseUrl}/api/events`, { ...as("fozzy"), "Last-Event-ID": lastId });
    await resumed.ready;
    const seen = await waitFor(() => {
      const events = resumed.events.map((e) => `${e.event}:${e.data.id}`);
      return events.includes("task-added:api-t3") && events.includes("task-removed:api-t2") ? events : undefined;
    }, 10_000);
    expect(seen).not.toContain("task-added:api-t2");
    resumed.close();
  });

  it("serves OpenAPI generated from the action params, Swagger UI, health, readiness and metrics", async () => {
    const openapi = await (await get("/api/openapi.json")).json();
    expect(openapi.openapi).toBe("3.0.3");
    const tasks = openapi.paths["/api/tasks"].get;
    expect(tasks.parameters.map((p: any) => [p.name, p.in, p.schema.type])).toEqual([
      ["page", "query", "integer"],
      ["size", "query", "integer"],
      ["sort", "query", "array"],
      ["filters", "query", "array"],
      ["assignedToMeOnly", "query", "boolean"],
      ["involvementsOnly", "query", "boolean"],
    ]);
    expect(tasks.parameters[1].schema.maximum).toBe(50);
    expect(openapi.paths["/api/task/{id}/defer"].post.requestBody.content["application/json"].schema).toMatchObject({ type: "string", format: "date-time" });
    expect(openapi.paths["/api/task/{id}/claim"].post.parameters[0]).toMatchObject({ name: "id", in: "path", required: true });
    expect(Object.keys(openapi.paths).some((p) => p.includes("node") || p.includes("view"))).toBe(false);
    const ui = await get("/swagger-ui/");
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain("/api/openapi.json");
    expect((await get("/swagger-ui/swagger-ui-bundle.js")).status).toBe(200);

    expect(await (await get("/api/health")).json()).toMatchObject({ status: "UP" });
    const ready = await waitFor(async () => {
      const response = await get("/api/ready");
      return response.status === 200 ? response.json() : undefined;
    }, 10_000);
    expect(ready).toMatchObject({ status: "READY", reasons: [] });
    expect((await get("/metrics")).status).toBe(401);
    const metrics = await (await get("/metrics", await platform().operator())).text();
    expect(metrics).toMatch(/^# HELP moleculer_request_total/m);
  });
}

describe("REST API on the embedded platform", () => {
  let broker: ServiceBroker;
  let baseUrl = "";

  beforeAll(async () => {
    process.env.JWT_SECRET = HS_SECRET;
    // With a key configured the demo header is off unless enabled explicitly (issue 13); these tests use both.
    process.env.AUTH_HEADER_ENABLED = "true";
    broker = await startBroker([...embeddedPlatform(), FormsApp], { metrics: { enabled: true, reporter: [new TaskpoolPrometheusReporter({ port: 0 }) as never] } });
    delete process.env.JWT_SECRET;
    delete process.env.AUTH_HEADER_ENABLED;
    const port = (broker.getLocalService("api") as any).server.address().port;
    baseUrl = `http://127.0.0.1:${port}`;
  });
  afterAll(() => broker?.stop());

  scenario(() => ({
    baseUrl,
    operator: async () => ({ Authorization: `Bearer ${await new SignJWT({ preferred_username: "ops", groups: ["operators"] }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("5m").sign(new TextEncoder().encode(HS_SECRET))}` }),
    command: (action, params) => call(broker, action, params),
    stream: async (streamId) => (await call(broker, "eventstore.readStream", { streamId })).events,
  }));

  it("authenticates Bearer tokens (HS256) and refuses bad ones", async () => {
    const token = await new SignJWT({ preferred_username: "hulk", groups: ["avengers", "admins"] }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m").sign(new TextEncoder().encode(HS_SECRET));
    const profile = await fetch(`${baseUrl}/api/profile`, { headers: { Authorization: `Bearer ${token}` } });
    expect(await profile.json()).toMatchObject({ username: "hulk", groups: ["avengers", "admins"] });
    const forged = await new SignJWT({ preferred_username: "hulk" }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("another secret entirely, also long"));
    expect((await fetch(`${baseUrl}/api/profile`, { headers: { Authorization: `Bearer ${forged}` } })).status).toBe(401);
    const expired = await new SignJWT({ preferred_username: "hulk" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(HS_SECRET));
    const refused = await fetch(`${baseUrl}/api/profile`, { headers: { Authorization: `Bearer ${expired}` } });
    expect(refused.status).toBe(401);
    expect((await refused.json()).message).toMatch(/exp/);
  });

  it("answers 503 when a service behind it is gone", async () => {
    await broker.destroyService(broker.getLocalService("view")!);
    const response = await fetch(`${baseUrl}/api/tasks`, { headers: { "X-Current-User-ID": "kermit" } });
    expect(response.status).toBe(503);
    // The retryable type of the retry contract (README, "Failures and retries"), with when to retry.
    expect((await response.json()).type).toBe("SERVICE_UNAVAILABLE");
    expect(response.headers.get("retry-after")).toBe("1");
    const ready = await fetch(`${baseUrl}/api/ready`);
    expect(ready.status).toBe(503);
  });
});

describe("REST API on a cluster of processes over NATS, view on FerretDB", () => {
  const namespace = unique("apicluster");
  const database = unique("apicluster");
  const mongoDatabase = unique("apicluster");
  const dataDir = mkdtempSync(join(tmpdir(), "taskpool-api-"));
  const nodes: NodeProcess[] = [];
  let client: ServiceBroker | undefined;
  let admin: pg.Client;
  let baseUrl = "";

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(testDatabaseUrl());
    url.pathname = `/${database}`;
    const mongo = new URL(testMongoUrl());
    mongo.pathname = `/${mongoDatabase}`;
    const port = await freePort();
    const common = { TRANSPORTER: testNatsUrl(), NAMESPACE: namespace, DATABASE_URL: url.toString(), MONGO_URL: mongo.toString(), DATA_DIR: dataDir, LOG_LEVEL: "warn" };
    nodes.push(spawnNode({ ...common, NODE_ID: "store", SERVICES: "eventstore,task,dataEntry" }));
    nodes.push(spawnNode({ ...common, NODE_ID: "processes", SERVICES: "processDefinition,processInstance,processVariable,task" }));
    nodes.push(spawnNode({ ...common, NODE_ID: "view", SERVICES: "view" }));
    nodes.push(spawnNode({ ...common, NODE_ID: "gateway", SERVICES: "api", PORT: String(port), HOST: "127.0.0.1", JWT_PUBLIC_KEY: rsa.publicKey, AUTH_HEADER_ENABLED: "true", RATE_LIMIT: "400" }));
    // The form URL templates of the example application, from a node of its own (loaded by path).
    nodes.push(spawnNode({ ...common, NODE_ID: "app", SERVICES: "test/fixtures/forms-app.service.ts" }));
    client = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "test-client" });
    await client.waitForServices(["eventstore", "task", "dataEntry", "processDefinition", "view", "api", "formsApp"], 60_000);
    baseUrl = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${baseUrl}/api/health`).catch(() => null))?.ok, 30_000, 200);
  });

  afterAll(async () => {
    await client?.stop();
    await Promise.all(nodes.map((n) => n.stop("SIGTERM")));
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    const store = await MongoViewStore.connect(testMongoUrl(), mongoDatabase);
    await store.dropDatabase();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  scenario(() => ({
    baseUrl,
    operator: async () => ({ Authorization: `Bearer ${await new SignJWT({ preferred_username: "ops", groups: ["operators"] }).setProtectedHeader({ alg: "RS256" }).setIssuedAt().setExpirationTime("5m").sign(await importPKCS8(rsa.privateKey, "RS256"))}` }),
    command: (action, params) => call(client!, action, params),
    stream: async (streamId) => (await call(client!, "eventstore.readStream", { streamId })).events,
  }));

  it("authenticates RS256 Bearer tokens with groups from the claims", async () => {
    const key = await importPKCS8(rsa.privateKey, "RS256");
    const token = await new SignJWT({ preferred_username: "piggy", groups: ["muppetshow"] }).setProtectedHeader({ alg: "RS256" }).setExpirationTime("5m").sign(key);
    const response = await fetch(`${baseUrl}/api/tasks?filters=task.id=api-t1`, { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-elementcount")).toBe("1");
  });

  it("limits the rate per client with 429", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 450 && !statuses.includes(429); i++) {
      statuses.push((await fetch(`${baseUrl}/api/profile`, { headers: { "X-Current-User-ID": "gonzo" } })).status);
    }
    expect(statuses).toContain(429);
    const limited = await fetch(`${baseUrl}/api/profile`, { headers: { "X-Current-User-ID": "gonzo" } });
    expect(await limited.json()).toMatchObject({ type: "RATE_LIMITED" });
    // Another client is not affected.
    expect((await fetch(`${baseUrl}/api/profile`, { headers: { "X-Current-User-ID": "fozzy" } })).status).toBe(200);
  });
});
