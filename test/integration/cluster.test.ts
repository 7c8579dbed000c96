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

    observer = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: "observer" });
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

    const seenByAlpha = await call<any[]>(observer, "$node.list", {}, { nodeID: "alpha" });
    expect(seenByAlpha.find((n) => n.id === "beta")?.available).toBe(true);

    // Killed without a goodbye: the others notice through missing heartbeats.
    await alpha.kill();
    const list = await waitFor(async () => {
      const nodesSeen = await call<any[]>(observer!, "$node.list");
      const entry = nodesSeen.find((n) => n.id === "alpha");
      return entry && entry.available === false ? nodesSeen : undefined;
    }, 40_000, 500);
    expect(list.find((n) => n.id === "beta")?.available).toBe(true);
    const fromBeta = await call<any[]>(observer, "$node.list", {}, { nodeID: "beta" });
    expect(fromBeta.find((n) => n.id === "alpha")?.available).toBe(false);

    // A clean stop leaves with exit code 0.
    expect(await beta.stop("SIGTERM")).toBe(0);
  });
});
