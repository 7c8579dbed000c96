// Every node that runs `view` answers the same — as an operator runs it: an event-store node and two API+view
// nodes as separate processes over the real NATS, on one real PostgreSQL.
//
// - VIEW_STORE=postgres: one node projects (lease), both answer from the shared tables; while commands stream in
//   both give identical answers at the same minPosition; the projecting node is SIGKILLed mid-projection and the
//   survivor takes over: its answers stay complete and /api/ready reports the true lag until it is 0.
// - VIEW_STORE=memory: each node projects its own copy; neither ever answers from an empty store.
// - An event of 900 KB among small ones travels through NATS and is projected (batches are bounded in bytes).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { call, freePort, spawnNode, startBroker, testDatabaseUrl, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";

const kermit = { username: "kermit", groups: ["muppetshow"] };

function task(id: string, payload: Record<string, unknown> = {}) {
  return {
    id,
    name: `Task ${id}`,
    sourceReference: { type: "process", instanceId: "i", executionId: "e", definitionId: "d", definitionKey: "k", name: "Cluster", applicationName: "cluster" },
    taskDefinitionKey: "k",
    candidateGroups: ["muppetshow"],
    payload,
  };
}

describe.each(["postgres", "memory"] as const)("two API+view nodes with VIEW_STORE=%s", (store) => {
  const namespace = unique(`viewcluster-${store}`);
  const database = unique("viewcluster").toLowerCase();
  const dataDir = mkdtempSync(join(tmpdir(), "taskpool-viewcluster-"));
  const nodes: Record<string, NodeProcess> = {};
  const ports: Record<string, number> = {};
  let client: ServiceBroker | undefined;
  let admin: pg.Client;
  let last = 0;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(testDatabaseUrl());
    url.pathname = `/${database}`;
    const common = { TRANSPORTER: testNatsUrl(), NAMESPACE: namespace, DATABASE_URL: url.toString(), VIEW_STORE: store, DATA_DIR: dataDir, LOG_LEVEL: "warn", HOST: "127.0.0.1", PUBLIC_URL: "http://taskpool.test" };
    nodes.store = spawnNode({ ...common, NODE_ID: "store", SERVICES: "eventstore,task" });
    for (const name of ["a", "b"]) {
      ports[name] = await freePort();
      nodes[name] = spawnNode({ ...common, NODE_ID: name, SERVICES: "view,api", PORT: String(ports[name]) });
    }
    client = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "client" });
    await client.waitForServices(["eventstore", "task", "view", "api"], 60_000);
    await waitFor(async () => {
      const views = client!.registry.getServiceList({ onlyAvailable: true }).filter((s: { name: string }) => s.name === "view");
      return views.length === 2;
    }, 60_000, 200);
  });

  afterAll(async () => {
    await client?.stop();
    await Promise.all(Object.values(nodes).map((n) => n.kill()));
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const onNode = (node: string, action: string, params: object) => client!.call(action, params, { nodeID: node }) as Promise<any>;
  const ids = (page: { elements: { id: string }[] }) => page.elements.map((t) => t.id);

  it("answers identically on both nodes while commands stream in", async () => {
    for (let round = 0; round < 6; round++) {
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => call(client!, "task.create", task(`${store}-${round}-${i}`, { n: round * 25 + i }))));
      last = Math.max(last, ...results.map((r) => r.globalPosition));
      const params = { user: kermit, minPosition: last, maxWaitMs: 20_000, size: 200, sort: ["+id"] };
      const [a, b] = await Promise.all([onNode("a", "view.tasksForUser", params), onNode("b", "view.tasksForUser", params)]);
      expect(a.totalElementCount).toBe((round + 1) * 25);
      expect(ids(b)).toEqual(ids(a));
    }
    const rest = async (node: string) => {
      const response = await fetch(`http://127.0.0.1:${ports[node]}/api/tasks?size=50&sort=%2Bid`, { headers: { "X-Current-User-ID": "kermit" } });
      return { total: response.headers.get("x-elementcount"), body: await response.json() };
    };
    const [a, b] = await Promise.all([rest("a"), rest("b")]);
    expect(a.total).toBe("150");
    expect(b).toEqual(a);
  });

  it("projects an event of 900 KB among small ones", async () => {
    const big = "x".repeat(900_000);
    const results = await Promise.all([
      call(client!, "task.create", task(`${store}-small-1`)),
      call(client!, "task.create", task(`${store}-big`, { big })),
      call(client!, "task.create", task(`${store}-small-2`)),
    ]);
    last = Math.max(last, ...results.map((r) => r.globalPosition));
    for (const node of ["a", "b"]) {
      const found = await onNode(node, "view.taskForId", { id: `${store}-big`, minPosition: last, maxWaitMs: 30_000 });
      expect(found.payload.big).toHaveLength(900_000);
      expect((await onNode(node, "view.tasksForUser", { user: kermit, size: 1, minPosition: last })).totalElementCount).toBe(153);
    }
  });

  it("keeps answering completely when a view node is SIGKILLed in the middle of projecting", async () => {
    const processors = await call(client!, "eventstore.processors");
    const holder = store === "postgres" ? String(processors.find((p: { name: string }) => p.name === "view").owner).split("/")[0]! : "a";
    const survivor = holder === "a" ? "b" : "a";
    // Commands stream in while the holder dies.
    const streaming = (async () => {
      for (let round = 0; round < 8; round++) {
        const results = await Promise.all(Array.from({ length: 25 }, (_, i) => call(client!, "task.create", task(`${store}-kill-${round}-${i}`))));
        last = Math.max(last, ...results.map((r) => r.globalPosition));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await nodes[holder]!.kill();
    await streaming;
    const answer = await onNode(survivor, "view.tasksForUser", { user: kermit, size: 1, minPosition: last, maxWaitMs: 60_000 });
    expect(answer.totalElementCount).toBe(153 + 200);
    const ready = await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${ports[survivor]}/api/ready`);
      const body = (await response.json()) as { status: string; lag: number };
      return response.status === 200 && body.lag === 0 ? body : undefined;
    }, 30_000, 200);
    expect(ready.status).toBe("READY");
  });
});
