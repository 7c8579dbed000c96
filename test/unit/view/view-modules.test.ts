// The view's modules without Moleculer: generations, consistency (applied token, knownVersion, minPosition waits),
// the totals cache and the queries over the in-memory store.
import { describe, expect, it } from "vitest";
import { ViewConsistency } from "../../../view/consistency.ts";
import { collectionName, generationCollections, loadMeta, positionOf, type ViewMeta } from "../../../view/generations.ts";
import { compareValues, payloadPaths, TotalsCache, ViewQueries } from "../../../view/queries.ts";
import { MemoryViewStore } from "../../../view/stores/memory-store.ts";
import type { Doc, FindOptions, ViewCollection } from "../../../view/stores/store.ts";

/** The in-memory store, recording the total each page() call was given as known (undefined: counted). */
class RecordingStore extends MemoryViewStore {
  readonly knownTotals: (number | undefined)[] = [];

  override collection<D extends Doc>(name: string): ViewCollection<D> {
    const collection = super.collection<D>(name);
    const page = collection.page.bind(collection);
    return Object.assign(Object.create(collection) as ViewCollection<D>, {
      page: (filter: Record<string, unknown>, options: FindOptions) => {
        this.knownTotals.push(options.knownTotal);
        return page(filter, options);
      },
    });
  }
}

function instance(id: string, state: string) {
  return { _id: id, processInstanceId: id, state, applicationName: "app", deleted: false, version: 1, position: 1, authorizedPrincipals: [] };
}

describe("generations", () => {
  it("names collections per generation and reads the meta, or the initial one", async () => {
    expect(collectionName("tasks", 3)).toBe("tasks_g3");
    expect(generationCollections(2)).toEqual(["tasks_g2", "dataEntries_g2", "processDefinitions_g2", "processInstances_g2", "processVariables_g2", "principalChanges_g2"]);
    expect(positionOf("17:42")).toBe(42);
    const store = new MemoryViewStore();
    expect(await loadMeta(store)).toEqual({ _id: "view", generation: 1, token: "0:0", globalPosition: 0 });
    await store.setMeta({ _id: "view", generation: 4, token: "9:12", globalPosition: 12 });
    expect(await loadMeta(store)).toMatchObject({ generation: 4, token: "9:12" });
  });
});

describe("consistency", () => {
  it("answers with its own token while it writes, else with the newer of the stored and the observed one", async () => {
    const store = new MemoryViewStore();
    await store.setMeta({ _id: "view", generation: 2, token: "5:5", globalPosition: 5 });
    let written: ViewMeta | null = null;
    const consistency = new ViewConsistency({ store, written: () => written, tokenOf: async () => null, timeoutMs: 50, metaTtlMs: 0 });
    expect(await consistency.answerVersion()).toBe("2:5:5");
    consistency.observe("4:4");
    expect(await consistency.answerVersion()).toBe("2:5:5");
    consistency.observe("7:7");
    expect(await consistency.answerVersion()).toBe("2:7:7");
    written = { _id: "view", generation: 3, token: "6:6", globalPosition: 6 };
    expect(await consistency.answerVersion()).toBe("3:6:6");
  });

  it("waits for minPosition until the view has applied it, and times out with CONSISTENCY_TIMEOUT", async () => {
    const store = new MemoryViewStore();
    await store.setMeta({ _id: "view", generation: 1, token: "1:1", globalPosition: 1 });
    const consistency = new ViewConsistency({ store, written: () => null, tokenOf: async (p) => (p <= 3 ? `${p}:${p}` : null), timeoutMs: 2_000 });
    await consistency.awaitPosition({}); // no position: no wait
    await consistency.awaitPosition({ minPosition: 1 });
    const waiting = consistency.awaitPosition({ minPosition: 3 });
    setTimeout(() => {
      consistency.observe("3:3");
      consistency.notify();
    }, 20);
    await expect(waiting).resolves.toBeUndefined();
    await expect(consistency.awaitPosition({ minPosition: 9, maxWaitMs: 30 })).rejects.toMatchObject({ type: "CONSISTENCY_TIMEOUT", code: 503 });
  });
});

describe("queries", () => {
  it("keeps totals per filter until the applied token changes", () => {
    const totals = new TotalsCache(2);
    totals.set("tasks_g1", { a: 1 }, "1:1", 10);
    expect(totals.get("tasks_g1", { a: 1 }, "1:1")).toBe(10);
    expect(totals.get("tasks_g1", { a: 1 }, "1:2")).toBeUndefined();
    expect(totals.get("tasks_g1", { a: 2 }, "1:1")).toBeUndefined();
    expect(totals.get("tasks_g2", { a: 1 }, "1:1")).toBeUndefined();
    totals.set("tasks_g1", { a: 2 }, "1:1", 20);
    totals.set("tasks_g1", { a: 3 }, "1:1", 30); // full: starts over
    expect(totals.get("tasks_g1", { a: 1 }, "1:1")).toBeUndefined();
    expect(totals.get("tasks_g1", { a: 3 }, "1:1")).toBe(30);
  });

  it("lists payload paths and orders attribute values null, numbers, strings", () => {
    expect(payloadPaths({ a: 1, b: { c: "x", d: [{ e: true }, 2] }, f: null })).toEqual(["a", "b.c", "b.d.e", "b.d", "f"]);
    expect([3, "b", null, 1, "a"].sort(compareValues)).toEqual([null, 1, 3, "a", "b"]);
  });

  it("pages process instances from the live generation, counting again only once the view moved on", async () => {
    const store = new RecordingStore();
    await store.setMeta({ _id: "view", generation: 2, token: "1:1", globalPosition: 1 });
    await store.collection("processInstances_g1").write([instance("old", "RUNNING")]);
    await store.collection("processInstances_g2").write([instance("a", "RUNNING"), instance("b", "FINISHED"), { ...instance("c", "RUNNING"), deleted: true }]);
    const consistency = new ViewConsistency({ store, written: () => null, tokenOf: async () => null, timeoutMs: 50, metaTtlMs: 0 });
    const queries = new ViewQueries(store, consistency);
    const first = await queries.processInstancesByState({ states: ["RUNNING"], page: 0, size: 10 });
    expect(first.elements.map((e) => e.processInstanceId)).toEqual(["a"]);
    expect(first.totalElementCount).toBe(1);
    await queries.processInstancesByState({ states: ["RUNNING"], page: 0, size: 10 });
    await queries.processInstancesByState({ states: ["FINISHED"], page: 0, size: 10 });
    // Same token and filter: the store is given the total counted before; another filter or token counts anew.
    expect(store.knownTotals).toEqual([undefined, 1, undefined]);
    consistency.observe("2:2");
    await queries.processInstancesByState({ states: ["RUNNING"], page: 0, size: 10 });
    expect(store.knownTotals).toEqual([undefined, 1, undefined, undefined]);
  });

  it("answers a known version with { unchanged } and refuses bad filters with VALIDATION_ERROR", async () => {
    const store = new MemoryViewStore();
    await store.setMeta({ _id: "view", generation: 1, token: "3:3", globalPosition: 3 });
    const consistency = new ViewConsistency({ store, written: () => null, tokenOf: async () => null, timeoutMs: 50, metaTtlMs: 0 });
    const queries = new ViewQueries(store, consistency);
    const answer = await queries.dataEntries({ page: 0, size: 10, knownVersion: "" });
    expect(answer).toEqual({ elements: [], totalElementCount: 0, version: "1:3:3" });
    expect(await queries.dataEntries({ page: 0, size: 10, knownVersion: "1:3:3" })).toEqual({ unchanged: true, version: "1:3:3" });
    expect(await queries.dataEntries({ page: 0, size: 10 })).toEqual({ elements: [], totalElementCount: 0 });
    await expect(queries.allTasks({ page: 0, size: 10, filters: ["task.bogus=1"] })).rejects.toMatchObject({ type: "VALIDATION_ERROR" });
  });
});
