// The cluster the fault suite and bench:failover break on purpose: a private PostgreSQL and NATS
// (test/private-servers.ts) and four node processes —
//
//   e1: eventstore            e2: eventstore, task, dataEntry
//   c1: task, dataEntry        v:  view, api (HTTP)
//
// so that every service but the gateway runs on two nodes — and a client broker with the platform's discovery
// settings (no broker-level retries: the client follows the documented policy itself, test/fault-load.ts).
import { ServiceBroker } from "moleculer";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnNode, unique, waitFor, type NodeProcess } from "./helpers.ts";
import { privateNats, privatePostgres, type PrivateNats, type PrivatePostgres } from "./private-servers.ts";
import { FastDiscoverer } from "../lib/discoverer.ts";
import { LocalFirstStrategy } from "../lib/strategies.ts";
import { transporterOf } from "../moleculer.config.ts";
import { readEnvironment } from "../lib/env.ts";

export const NODE_SERVICES: Record<string, string> = { e1: "eventstore", e2: "eventstore,task,dataEntry", c1: "task,dataEntry", v: "view,api" };

export class FaultCluster {
  readonly namespace = unique("faults");
  readonly dataDir = mkdtempSync(join(tmpdir(), "taskpool-faults-"));
  readonly nodes: Record<string, NodeProcess> = {};
  readonly heartbeat = readEnvironment();
  postgres!: PrivatePostgres;
  nats!: PrivateNats;
  port = 0;
  private readonly clients: ServiceBroker[] = [];

  async start(): Promise<void> {
    [this.postgres, this.nats] = await Promise.all([privatePostgres(), privateNats()]);
    this.port = await freePort();
    const observer = await this.client("observer");
    for (const name of Object.keys(NODE_SERVICES)) this.startNode(name);
    await observer.waitForServices(["eventstore", "task", "dataEntry", "view", "api"], 120_000);
    for (const name of Object.keys(NODE_SERVICES)) await this.joined(name, observer);
  }

  /** A client broker on the cluster's NATS, with the platform's discovery settings. */
  async client(nodeID: string): Promise<ServiceBroker> {
    const broker = new ServiceBroker({
      namespace: this.namespace,
      nodeID,
      // Each retried call would log a warning; the load counts them instead.
      logger: { type: "Console", options: { level: "error" } },
      transporter: transporterOf(this.nats.url),
      requestTimeout: 5000,
      registry: {
        strategy: LocalFirstStrategy,
        preferLocal: false,
        discoverer: new FastDiscoverer({ heartbeatIntervalMs: this.heartbeat.heartbeatIntervalMs, heartbeatTimeoutMs: this.heartbeat.heartbeatTimeoutMs }) as never,
      },
      retryPolicy: { enabled: false },
      skipProcessEventRegistration: true,
    });
    await broker.start();
    this.clients.push(broker);
    return broker;
  }

  startNode(name: string): NodeProcess {
    this.nodes[name] = spawnNode({
      TRANSPORTER: this.nats.url,
      NAMESPACE: this.namespace,
      DATABASE_URL: this.postgres.url,
      VIEW_STORE: "postgres",
      DATA_DIR: this.dataDir,
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
      NODE_ID: name,
      SERVICES: NODE_SERVICES[name]!,
      PORT: name === "v" ? String(this.port) : "0",
      APP_PORT: "0",
    });
    return this.nodes[name]!;
  }

  /** Waits until `broker` sees node `name` available with its services. */
  async joined(name: string, broker: ServiceBroker = this.clients[0]!): Promise<void> {
    await waitFor(
      () =>
        broker.registry.nodes.get(name)?.available === true &&
        broker.registry.getServiceList({ onlyAvailable: true }).some((s: { nodeID?: string }) => s.nodeID === name),
      90_000,
      100,
    );
  }

  async destroy(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.stop().catch(() => undefined)));
    await Promise.all(Object.values(this.nodes).map((n) => n.kill()));
    await this.nats?.kill();
    await this.postgres?.destroy();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
