// Nodes start and wait: an event store node started while its PostgreSQL and NATS are down keeps retrying (and
// says so in its log) instead of exiting, and starts serving once they are up; a configuration error still exits 1.
// Private servers (test/private-servers.ts): the shared ones are never stopped.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { createBroker, spawnNode, unique, waitFor, type NodeProcess } from "../helpers.ts";
import { privateNats, privatePostgres, type PrivateNats, type PrivatePostgres } from "../private-servers.ts";
import { transporterOf } from "../../moleculer.config.ts";

describe("a node started before its PostgreSQL and NATS", () => {
  let postgres: PrivatePostgres;
  let nats: PrivateNats;
  const nodes: NodeProcess[] = [];
  let client: ServiceBroker | undefined;

  beforeAll(async () => {
    [postgres, nats] = await Promise.all([privatePostgres(), privateNats()]);
  });

  afterAll(async () => {
    await client?.stop();
    await Promise.all(nodes.map((n) => n.kill()));
    await nats?.kill();
    await postgres?.destroy();
  });

  it("waits for both, reports it, then serves", async () => {
    const namespace = unique("startwait");
    await postgres.stop();
    await nats.kill();
    const node = spawnNode({ TRANSPORTER: nats.url, NAMESPACE: namespace, DATABASE_URL: postgres.url, NODE_ID: "waiting", SERVICES: "eventstore", LOG_LEVEL: "info" });
    nodes.push(node);
    await node.waitForOutput(/Connection is failed/, 60_000);
    await nats.start();
    await node.waitForOutput(/Waiting for the database/, 60_000);
    await postgres.start();
    await node.waitForOutput(/Taskpool node waiting started/, 90_000);
    client = createBroker({ namespace, transporter: transporterOf(nats.url) as never, nodeID: "startwait-client" });
    await client.start();
    await client.waitForServices(["eventstore"], 30_000);
    const head = (await client.call("eventstore.head")) as { globalPosition: number };
    expect(head.globalPosition).toBeGreaterThanOrEqual(0);
    expect(await node.stop("SIGTERM")).toBe(0);
  });

  it("exits 1 on a configuration error (a database that does not exist)", async () => {
    const url = new URL(postgres.url);
    url.pathname = "/no_such_database";
    const node = spawnNode({ DATABASE_URL: url.toString(), NODE_ID: "misconfigured", SERVICES: "eventstore", LOG_LEVEL: "info" });
    nodes.push(node);
    await node.waitForOutput(/Start failed: .*no_such_database/, 60_000);
    // The node closes what it opened, then exits; a stop signal sent before that would be answered with exit 0.
    await waitFor(async () => (await node.exitCode()) !== null, 30_000, 100);
    expect(await node.exitCode()).toBe(1);
  });
});
