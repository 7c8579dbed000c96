// The embedded platform as a newcomer starts it: `npm start` with no server at all, data under DATA_DIR that
// survives a restart, a clean stop on SIGINT with exit 0 and nothing left open. With TRANSPORTER set, other
// nodes can call its actions (here: this test's node over the real NATS server).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import { call, spawnNode, startBroker, testNatsUrl, unique, type NodeProcess } from "../helpers.ts";

describe("embedded platform (npm start)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "taskpool-embedded-"));
  let node: NodeProcess | undefined;
  let client: ServiceBroker | undefined;

  afterAll(async () => {
    await client?.stop();
    await node?.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts without servers, stops on Ctrl-C with exit 0, and keeps its data across a restart", async () => {
    // Alone, exactly as `npm start`: no transporter, no database URL.
    const alone = spawnNode({ DATA_DIR: dataDir, NODE_ID: "embedded-alone", PORT: "0", APP_PORT: "0" });
    await alone.waitForOutput(/Taskpool node embedded-alone started \(embedded platform; transporter: none; event store: PGlite/);
    expect(existsSync(join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
    expect(await alone.stop("SIGINT")).toBe(0);
    expect(alone.output()).not.toMatch(/open handles/);

    const namespace = unique("embedded");
    const env = { DATA_DIR: dataDir, NODE_ID: "embedded-1", NAMESPACE: namespace, TRANSPORTER: testNatsUrl(), PORT: "0", APP_PORT: "0" };
    node = spawnNode(env);
    await node.waitForOutput(/Taskpool node embedded-1 started/);
    client = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "client" });
    await client.waitForServices(["eventstore"], 30_000);
    const written = await call(client, "eventstore.append", { streamId: "restart-1", events: [{ type: "Kept", data: { n: 1 } }] });
    expect(await node.stop("SIGINT")).toBe(0);

    node = spawnNode(env);
    await node.waitForOutput(/Taskpool node embedded-1 started/);
    await client.waitForServices(["eventstore"], 30_000);
    const stream = await call(client, "eventstore.readStream", { streamId: "restart-1" });
    expect(stream.events.map((e: any) => [e.type, e.data, e.globalPosition])).toEqual([["Kept", { n: 1 }, written.globalPosition]]);
    expect(await node.stop("SIGTERM")).toBe(0);
    node = undefined;
  });
});
