// Polyflow's task-list contract (test/fixtures/polyflow-contract.ts) against live answers under its base path
// /polyflow-platform/rest: every operation it defines, as a user with tasks, data entries and processes to start,
// once on the embedded platform in this process and once on a cluster of processes over the real NATS server
// with the view on FerretDB. Any departure from the contract fails the operation's test and is listed.
//
// Nothing is mocked. There is no engine here: claim, defer and complete become interaction events that no
// connector performs, which is all the contract promises (204, accepted).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { createServer, type AddressInfo } from "node:net";
import type { Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { POLYFLOW_BASE_PATH } from "../../services/api.service.ts";
import { MongoViewStore } from "../../view/stores/mongo-store.ts";
import { maxPageSize, mismatches, operations, totalHeaderMismatches, type Operation } from "../fixtures/polyflow-contract.ts";
import { call, launchChromium, spawnNode, startBroker, testDatabaseUrl, testMongoUrl, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";
import { embeddedPlatform } from "../platform.ts";
import FormsApp from "../fixtures/forms-app.service.ts";

const APP = "example-process-approval";
const ENTRY_TYPE = "io.holunda.camunda.taskpool.example.ApprovalRequest";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function sourceReference(instanceId: string) {
  return { type: "process", instanceId, executionId: instanceId, definitionId: "process_approve_request:1:contract", definitionKey: "process_approve_request", name: "Request Approval", applicationName: APP };
}

/** What the user of the test has: three tasks (every optional field; none; one without a form), a data entry, two processes to start. */
async function seed(command: (action: string, params: object) => Promise<unknown>, run: string) {
  await command("processDefinition.register", {
    processDefinitionId: "process_approve_request:1:contract",
    processDefinitionKey: "process_approve_request",
    processDefinitionVersion: 1,
    applicationName: APP,
    processName: "Request Approval",
    processVersionTag: "v1",
    processDescription: "Approves a request.",
    formKey: "start-approval",
    candidateStarterGroups: ["muppetshow", "avengers"],
  });
  // One without a start form, started directly.
  await command("processDefinition.register", {
    processDefinitionId: "process_quick_note:1:contract",
    processDefinitionKey: "process_quick_note",
    processDefinitionVersion: 1,
    applicationName: APP,
    processName: "Quick note",
    candidateStarterGroups: ["muppetshow"],
  });
  await command("dataEntry.createOrUpdate", {
    entryType: ENTRY_TYPE,
    entryId: `${run}-r1`,
    type: "Approval Request",
    applicationName: APP,
    name: "New laptop for fozzy",
    description: "A request for approval",
    state: { processingType: "IN_PROGRESS", state: "Submitted" },
    payload: { amount: 1200, currency: "EUR", subject: "New laptop" },
    formKey: "approval-request",
    authorizationChanges: [{ kind: "AddUser", name: "fozzy" }, { kind: "AddGroup", name: "muppetshow" }],
    modification: { time: "2026-11-30T09:00:00Z", username: "fozzy", log: "Request submitted", logNotes: "please" },
  });
  await command("task.create", {
    id: `${run}-full`,
    sourceReference: sourceReference(`${run}-pi1`),
    taskDefinitionKey: "user_approve_request",
    name: "Approve Request",
    description: "Approve the request of fozzy",
    formKey: "approve-request",
    businessKey: `${run}-r1`,
    priority: 23,
    createTime: "2026-11-30T09:00:01.000Z",
    dueDate: "2026-12-03T09:00:00.000Z",
    followUpDate: "2026-12-01T09:00:00.000Z",
    candidateUsers: ["fozzy", "gonzo"],
    candidateGroups: ["muppetshow"],
    payload: { request: `${run}-r1`, amount: 1200, originator: "fozzy", tags: ["it"] },
    correlations: { [ENTRY_TYPE]: `${run}-r1` },
  });
  // The fewest attributes an engine reports: every optional field absent.
  await command("task.create", {
    id: `${run}-bare`,
    sourceReference: sourceReference(`${run}-pi2`),
    taskDefinitionKey: "user_amend_request",
    createTime: "2026-11-30T09:00:02.000Z",
    candidateUsers: ["fozzy"],
  });
  // From a source that is not an engine and has no forms (README: publishing tasks from elsewhere).
  await command("task.create", {
    id: `${run}-mail`,
    sourceReference: { type: "generic", instanceId: `${run}-mail`, executionId: `${run}-mail`, definitionId: "inbox:1", definitionKey: "inbox", name: "Customer mail", applicationName: "mail-inbox" },
    taskDefinitionKey: "answer-mail",
    name: "Answer the customer",
    createTime: "2026-11-30T09:00:03.000Z",
    candidateGroups: ["muppetshow"],
  });
}

function contract(platform: () => { baseUrl: string; run: string; port: number }) {
  let userId = "";
  const url = (path: string) => `${platform().baseUrl}${POLYFLOW_BASE_PATH}${path}`;

  /** One call of the operation as Polyflow's generated client makes it. */
  function request(operation: Operation, options: { taskId?: string; user?: string | null } = {}) {
    const headers: Record<string, string> = { Accept: "application/json" };
    const user = options.user === undefined ? userId : options.user;
    if (operation.userHeader && user) headers["X-Current-User-ID"] = user;
    let path = operation.path.replace("{taskId}", encodeURIComponent(options.taskId ?? `${platform().run}-full`));
    if (operation.paged) {
      // Polyflow's client: a page, its page size, one sort directive; filters repeat.
      const sort = operation.id === "getTasks" ? "-task.dueDate" : "+dataentry.name";
      path += `?page=0&size=${maxPageSize}&sort=${encodeURIComponent(sort)}`;
    }
    let body: string | undefined;
    if (operation.id === "defer") body = JSON.stringify("2026-12-02T08:00:00.000Z");
    if (operation.id === "complete") body = JSON.stringify({ approveDecision: "APPROVE", comment: "fine" });
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url(path), { method: operation.method, headers, body });
  }

  beforeAll(async () => {
    // The user logs in as Polyflow's client does: by an id from the user list.
    const users = (await (await fetch(url("/users"))).json()) as { id: string; username: string }[];
    userId = users.find((u) => u.username === "fozzy")!.id;
    // The view has caught up with the seed once all tasks show.
    await waitFor(async () => {
      const response = await fetch(url("/tasks"), { headers: { "X-Current-User-ID": userId } });
      return response.ok && ((await response.json()) as unknown[]).length === 3;
    }, 20_000, 100);
  });

  for (const operation of operations) {
    it(`${operation.id}: ${operation.method} ${operation.path} answers as the contract says`, async () => {
      const response = await request(operation);
      const problems: string[] = [];
      if (response.status !== operation.success.status) problems.push(`status ${response.status}, expected ${operation.success.status}: ${await response.text()}`);
      else if (operation.success.status === 200) {
        const body = await response.json();
        problems.push(...mismatches(operation.success.body, body));
        if (operation.success.totalHeader) problems.push(...totalHeaderMismatches(response.headers.get("x-elementcount"), Array.isArray(body) ? body.length : 0));
        // The user has something of every kind, so that the shapes are really checked.
        if (Array.isArray(body)) expect(body.length, `${operation.id} answered an empty list`).toBeGreaterThan(0);
      } else {
        expect(await response.text()).toBe("");
      }
      expect(problems).toEqual([]);

      // The failures the contract declares that a caller can cause.
      if (operation.failures.includes(401)) expect((await request(operation, { user: null })).status).toBe(401);
      if (operation.failures.includes(404)) expect((await request(operation, { taskId: "no-such-task" })).status).toBe(404);
    });
  }

  it("every column Polyflow's task list sorts by answers 200", async () => {
    const headers = { "X-Current-User-ID": userId };
    const columns = { "/tasks": ["task.process", "task.name", "task.createTime", "task.dueDate", "task.priority"], "/business-data-entries": ["dataentry.type", "dataentry.name", "dataentry.currentStatusType"] };
    for (const [path, fields] of Object.entries(columns)) {
      for (const field of fields) {
        for (const sign of ["+", "-"]) {
          const response = await fetch(url(`${path}?page=0&size=7&sort=${encodeURIComponent(sign + field)}`), { headers });
          expect(`${path} ${sign}${field}: ${response.status}`).toBe(`${path} ${sign}${field}: 200`);
        }
      }
    }
  });

  it("the answers under Polyflow's base path are those under /api", async () => {
    const headers = { "X-Current-User-ID": userId };
    for (const path of ["/tasks", "/business-data-entries", "/processes", "/profile"]) {
      const [ours, theirs] = await Promise.all([fetch(`${platform().baseUrl}/api${path}`, { headers }), fetch(url(path), { headers })]);
      expect(theirs.status).toBe(ours.status);
      expect(theirs.headers.get("x-elementcount")).toBe(ours.headers.get("x-elementcount"));
      expect(await theirs.json()).toEqual(await ours.json());
    }
    // The live stream too (a browser's EventSource names the user in the query).
    const controller = new AbortController();
    const stream = await fetch(url(`/events?user=${encodeURIComponent(userId)}`), { signal: controller.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
    controller.abort();
    // Every list says how many it holds, the user list too.
    expect((await fetch(url("/users"))).headers.get("x-elementcount")).toMatch(/^\d+$/);
  });

  it("the bare task answers null for what it lacks, and the full one carries Taskpool's additions beside the contract's fields", async () => {
    const body = (await (await fetch(url("/tasks?sort=%2Btask.createTime"), { headers: { "X-Current-User-ID": userId } })).json()) as { task: Record<string, unknown>; dataEntries: unknown[] }[];
    const [full, bare, mail] = body;
    // A task without a form template links to itself in Taskpool's own list.
    // (At PUBLIC_URL, by default http://localhost:<PORT>: 8081 here, the gateway's own port in the cluster.)
    expect(mail!.task.url).toBe(`http://localhost:${platform().port}/?task=${platform().run}-mail&userId=%userId%`);
    expect(full!.task).toMatchObject({ applicationName: APP, taskDefinitionKey: "user_approve_request", url: `http://localhost:8080/forms/#/tasks/approve-request/${platform().run}-full?userId=%userId%` });
    expect(full!.dataEntries).toHaveLength(1);
    expect(bare!.task).toMatchObject({ name: null, description: null, dueDate: null, businessKey: null, processName: "Request Approval" });
  });
}

describe("Polyflow's contract on the embedded platform", () => {
  let broker: ServiceBroker;
  let baseUrl = "";
  const run = unique("pfc");

  beforeAll(async () => {
    broker = await startBroker([...embeddedPlatform(), FormsApp]);
    const { server } = broker.getLocalService("api") as unknown as { server: Server };
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await seed((action, params) => call(broker, action, params), run);
  });
  afterAll(() => broker?.stop());

  contract(() => ({ baseUrl, run, port: 8081 }));

  // Starting from Polyflow's "Start new…" menu, which can only follow a process's url: the start form where the
  // process has one, else Taskpool's own start dialog, signed in as the user the link names.
  it("every process's url starts it: the start form, or Taskpool's start dialog for the user the link names", async () => {
    const headers = { "X-Current-User-ID": "fozzy" };
    const processes = (await (await fetch(`${baseUrl}${POLYFLOW_BASE_PATH}/processes`, { headers })).json()) as { definitionKey: string; url: string | null; startsThroughForm: boolean }[];
    const byKey = Object.fromEntries(processes.map((p) => [p.definitionKey, p]));
    expect(byKey.process_approve_request).toMatchObject({ startsThroughForm: true, url: "http://localhost:8080/forms/#/start?userId=%userId%" });
    expect(byKey.process_quick_note).toMatchObject({ startsThroughForm: false, url: "http://localhost:8081/?start=example-process-approval/process_quick_note&userId=%userId%" });

    // What Polyflow's client does with the link: fill in the user, follow it (here on the test's port).
    const link = new URL(byKey.process_quick_note!.url!.replace("%userId%", "fozzy"));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("pageerror", (err) => problems.push(err.message));
      await page.goto(`${baseUrl}/${link.search}`);
      await page.waitForSelector("#start-dialog[open]");
      expect(await page.inputValue("#user")).toBe("fozzy");
      expect(await page.textContent("#start-dialog .dialog-subject")).toContain("Quick note");
      await page.fill("#start-business-key", "note-1");
      await page.click("#start-dialog button[type=submit]");
      await page.waitForSelector("#notice:not([hidden])");
      expect(await page.textContent("#notice")).toContain("Start of “Quick note” requested");
      const stream = (await call(broker, "eventstore.readStream", { streamId: "processDefinition-process_quick_note:1:contract" })).events as { type: string; data: Record<string, unknown> }[];
      expect(stream.at(-1)).toMatchObject({ type: "ProcessStartRequested", data: { requestedBy: "fozzy", businessKey: "note-1" } });

      // The link of a task without a form of its own shows that task, to the user it names.
      const tasks = (await (await fetch(`${baseUrl}${POLYFLOW_BASE_PATH}/tasks`, { headers })).json()) as { task: { id: string; url: string } }[];
      const mail = tasks.find((t) => t.task.id === `${run}-mail`)!;
      await page.goto(`${baseUrl}/${new URL(mail.task.url.replace("%userId%", "fozzy")).search}`);
      await page.waitForSelector(`tr[data-task-id="${run}-mail"]`);
      expect(await page.locator("tr[data-task-id]").count()).toBe(1);
      expect(await page.inputValue("#user")).toBe("fozzy");
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe("Polyflow's contract on a cluster of processes over NATS, view on FerretDB", () => {
  const namespace = unique("pfcontract");
  const database = unique("pfcontract");
  const mongoDatabase = unique("pfcontract");
  const dataDir = mkdtempSync(join(tmpdir(), "taskpool-pfcontract-"));
  const run = unique("pfc");
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
    nodes.push(spawnNode({ ...common, NODE_ID: "processes", SERVICES: "processDefinition,processInstance,processVariable" }));
    nodes.push(spawnNode({ ...common, NODE_ID: "view", SERVICES: "view" }));
    nodes.push(spawnNode({ ...common, NODE_ID: "gateway", SERVICES: "api", PORT: String(port), HOST: "127.0.0.1" }));
    // The application's form URL templates come from a node of its own, loaded by path as any application can be.
    nodes.push(spawnNode({ ...common, NODE_ID: "app", SERVICES: "test/fixtures/forms-app.service.ts" }));
    client = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "test-client" });
    await client.waitForServices(["eventstore", "task", "dataEntry", "processDefinition", "view", "api", "formsApp"], 60_000);
    baseUrl = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${baseUrl}/api/health`).catch(() => null))?.ok, 30_000, 200);
    await seed((action, params) => call(client!, action, params), run);
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

  contract(() => ({ baseUrl, run, port: Number(new URL(baseUrl).port) }));
});
