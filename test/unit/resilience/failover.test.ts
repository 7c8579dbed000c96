// Fail-over inside one process (Moleculer's in-memory Fake transporter): a node that stops beating is marked
// offline by the FastDiscoverer, the call pending on it is rejected and retried on the other node that hosts the
// action, and commands routed by aggregate id move to a live node.
import { afterEach, describe, expect, it } from "vitest";
import { ServiceBroker, type BrokerOptions, type ServiceSchema } from "moleculer";
import { FastDiscoverer } from "../../../lib/discoverer.ts";
import { AGGREGATE_SHARD, LocalFirstStrategy } from "../../../lib/strategies.ts";
import { unique } from "../../helpers.ts";
import { handBackPendingCalls } from "../../../lib/lifecycle.ts";

const brokers: ServiceBroker[] = [];
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop().catch(() => undefined)));
});

function node(namespace: string, nodeID: string, services: ServiceSchema[], extra: Partial<BrokerOptions> = {}): ServiceBroker {
  const broker = new ServiceBroker({
    namespace,
    nodeID,
    transporter: "Fake",
    logger: false,
    // Long enough that only the discoverer, not the timeout, can end a call to a silent node within the test.
    requestTimeout: 120_000,
    registry: { strategy: LocalFirstStrategy, preferLocal: false, discoverer: new FastDiscoverer({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400 }) as never },
    retryPolicy: { enabled: true, retries: 3, delay: 50, maxDelay: 200, factor: 2, check: (err: Error) => ["REQUEST_REJECTED", "SERVICE_NOT_AVAILABLE"].includes((err as { type?: string }).type ?? "") },
    skipProcessEventRegistration: true,
    ...extra,
  });
  for (const schema of services) broker.createService(schema);
  brokers.push(broker);
  return broker;
}

/** A command service whose handler on `hangOn` never answers (a node that died mid-call). */
function commands(hangOn: string | null): ServiceSchema {
  return {
    name: "cmd",
    actions: {
      run: {
        strategy: AGGREGATE_SHARD,
        strategyOptions: { shardKey: "id" },
        handler(this: { broker: ServiceBroker }) {
          if (this.broker.nodeID === hangOn) return new Promise(() => undefined);
          return this.broker.nodeID;
        },
      },
    },
  };
}

/** Simulates SIGKILL: the node neither beats nor says goodbye (its transporter stays subscribed, but silent). */
function silence(broker: ServiceBroker): void {
  (broker.registry as unknown as { discoverer: FastDiscoverer }).discoverer.stopHeartbeatTimers();
}

describe("fail-over with the FastDiscoverer", () => {
  it("rejects the call pending on a silent node and retries it on the other node", async () => {
    const namespace = unique("failover");
    const client = node(namespace, "client", []);
    const dying = node(namespace, "dying", [commands("dying")]);
    const alive = node(namespace, "alive", [commands("dying")]);
    await Promise.all([client.start(), dying.start(), alive.start()]);
    await client.waitForServices(["cmd"]);
    await waitUntil(() => client.registry.getActionEndpoints("cmd.run")?.endpoints.filter((e) => e.isAvailable).length === 2);

    // Find an aggregate id whose home is the node about to die.
    let id = "";
    for (let i = 0; !id; i++) {
      const endpoint = client.registry.getActionEndpoints("cmd.run")!.next(client.ContextFactory.create(client, undefined as never, { id: `a${i}` }, {}) as never);
      if ((endpoint as { id: string }).id === "dying") id = `a${i}`;
    }
    const answer = client.call("cmd.run", { id });
    await new Promise((resolve) => setTimeout(resolve, 200));
    silence(dying);
    await expect(answer).resolves.toBe("alive");
    expect(client.registry.nodes.get("dying")?.available).toBe(false);

    // The aggregate's later commands go to the live node at once.
    await expect(client.call("cmd.run", { id })).resolves.toBe("alive");
  });

  it("brings a node back once it beats again", async () => {
    const namespace = unique("failback");
    const client = node(namespace, "client", []);
    const flaky = node(namespace, "flaky", [commands(null)]);
    await Promise.all([client.start(), flaky.start()]);
    await client.waitForServices(["cmd"]);
    const discoverer = (flaky.registry as unknown as { discoverer: FastDiscoverer }).discoverer;
    discoverer.stopHeartbeatTimers();
    await waitUntil(() => client.registry.nodes.get("flaky")?.available === false);
    discoverer.startHeartbeatTimers();
    await waitUntil(() => client.registry.nodes.get("flaky")?.available === true);
    await expect(client.call("cmd.run", { id: "x" })).resolves.toBe("flaky");
  });
});

describe("a stopping node hands back its pending calls", () => {
  it("answers a call still waiting on another node with a retryable SERVICE_UNAVAILABLE", async () => {
    const namespace = unique("handback");
    const stopping = node(namespace, "stopping", []);
    const silent = node(namespace, "silent", [commands("silent")]);
    await Promise.all([stopping.start(), silent.start()]);
    await stopping.waitForServices(["cmd"]);
    const pending = stopping.call("cmd.run", { id: "x" });
    await waitUntil(() => ((stopping.transit as unknown as { pendingRequests: Map<string, unknown> }).pendingRequests.size === 1));
    expect(handBackPendingCalls(stopping)).toBe(1);
    await expect(pending).rejects.toMatchObject({ type: "SERVICE_UNAVAILABLE", code: 503, retryable: true });
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
