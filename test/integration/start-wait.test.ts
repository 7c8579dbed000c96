// Nodes start and wait: an event store node started while its PostgreSQL and NATS are down keeps retrying (and
// says so in its log) instead of exiting, and starts serving once they are up; a configuration error still exits 1.
// A view node whose MongoDB is not reachable yet waits the same way and says so in /api/ready.
// Private servers (test/private-servers.ts): the shared ones are never stopped.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { createServer, connect, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBroker, freePort, spawnNode, testMongoUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";
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

/** A TCP forwarder on `port` to `target` — MongoDB "coming up" at an address where nothing listened before. */
function forward(port: number, target: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () =>
      resolve({
        close: () => {
          for (const socket of sockets) socket.destroy();
          return new Promise<void>((done) => server.close(() => done()));
        },
      }),
    );
  });
}

describe("a view node started before its MongoDB", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "taskpool-mongo-wait-"));
  let node: NodeProcess | undefined;
  let proxy: { close(): Promise<void> } | undefined;

  afterAll(async () => {
    await node?.kill();
    await proxy?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("waits for it, reports it in the log and in /api/ready, then serves", async () => {
    const mongo = new URL(testMongoUrl());
    const [mongoPort, apiPort] = [await freePort(), await freePort()];
    const waitingUrl = new URL(mongo.toString());
    waitingUrl.host = `127.0.0.1:${mongoPort}`;
    waitingUrl.pathname = `/${unique("mongowait")}`;
    node = spawnNode({ NODE_ID: "mongo-waiting", SERVICES: "eventstore,view,api", DATA_DIR: dataDir, MONGO_URL: waitingUrl.toString(), PORT: String(apiPort), LOG_LEVEL: "info" });
    // Each attempt takes the driver's server selection time (10 s) to fail.
    await node.waitForOutput(/Waiting for MongoDB \(view store\)/, 60_000);
    const waiting = await fetch(`http://127.0.0.1:${apiPort}/api/ready`);
    expect(waiting.status).toBe(503);
    const report = (await waiting.json()) as { status: string; reasons: string[] };
    expect(report.status).toBe("NOT_READY");
    expect(report.reasons[0]).toMatch(/^waiting for MongoDB \(view store\): /);
    expect(await node.exitCode()).toBeNull();

    proxy = await forward(mongoPort, { host: mongo.hostname, port: Number(mongo.port || 27017) });
    await node.waitForOutput(/MongoDB \(view store\) reached after/, 60_000);
    await node.waitForOutput(/Taskpool node mongo-waiting started/, 60_000);
    const ready = await waitFor(async () => {
      const response = await fetch(`http://127.0.0.1:${apiPort}/api/ready`);
      return response.status === 200 ? ((await response.json()) as { status: string }) : null;
    }, 30_000, 200);
    expect(ready.status).toBe("READY");
    expect(await node.stop("SIGTERM")).toBe(0);
  });
});
