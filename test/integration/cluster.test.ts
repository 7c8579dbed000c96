// Cluster mode over the real NATS server: nodes in separate processes discover each other, call each other's
// actions, and a killed node is shown offline.
import { afterAll, describe, expect, it } from "vitest";
import { call, spawnNode, startBroker, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";
import type { ServiceBroker } from "moleculer";

describe("cluster over NATS", () => {
  const namespace = unique("cluster");
  const nodes: NodeProcess[] = [];
  let observer: ServiceBroker | undefined;

  afterAll(async () => {
    await observer?.stop();
    await Promise.all(nodes.map((n) => n.kill()));
  });

  it("lets processes call each other's actions, discovers late joiners, and shows a killed node offline", async () => {
    const common = { TRANSPORTER: testNatsUrl(), NAMESPACE: namespace, SERVICES: "test/fixtures/echo.service.ts" };
    const alpha = spawnNode({ ...common, NODE_ID: "alpha" });
    nodes.push(alpha);
    await alpha.waitForOutput(/Taskpool node alpha started/);

    // A node started later discovers the running one, and the running one sees it.
    const beta = spawnNode({ ...common, NODE_ID: "beta", SERVICES: "test/fixtures/caller.service.ts" });
    nodes.push(beta);
    await beta.waitForOutput(/Taskpool node beta started/);

    observer = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "observer", heartbeatInterval: 5, heartbeatTimeout: 15 });
    await observer.waitForServices(["echo", "caller"], 30_000);

    // beta's action calls alpha's action over NATS.
    const answer = await call<string>(observer, "caller.relay", { name: "kermit" });
    expect(answer).toBe("relayed: hi kermit from alpha");
    const direct = await call<string>(observer, "echo.hi", { name: "piggy" }, { nodeID: "alpha" });
    expect(direct).toBe("hi piggy from alpha");

    const services = await call<any[]>(observer, "$node.services", { skipInternal: true, withActions: true });
    const byName = new Map(services.map((s) => [s.name, s.nodes]));
    expect(byName.get("echo")).toEqual(["alpha"]);
    expect(byName.get("caller")).toEqual(["beta"]);

    // The running node learns of the newcomer when the newcomer announces its services (debounced by Moleculer).
    await waitFor(async () => {
      const seenByAlpha = await call<any[]>(observer!, "$node.list", {}, { nodeID: "alpha" });
      return seenByAlpha.some((n) => n.id === "beta" && n.available) && seenByAlpha.some((n) => n.id === "observer");
    }, 10_000, 200);

    // Killed without a goodbye: the others notice through missing heartbeats.
    await alpha.kill();
    const offline = (nodes: any[], id: string) => nodes.some((n) => n.id === id && n.available === false);
    await waitFor(async () => offline(await call<any[]>(observer!, "$node.list"), "alpha"), 60_000, 500);
    await waitFor(async () => offline(await call<any[]>(observer!, "$node.list", {}, { nodeID: "beta" }), "alpha"), 60_000, 500);
    const fromBeta = await call<any[]>(observer, "$node.list", {}, { nodeID: "beta" });
    expect(fromBeta.find((n) => n.id === "beta")?.available).toBe(true);

    // A clean stop leaves with exit code 0.
    expect(await beta.stop("SIGTERM")).toBe(0);
  });
});
