// The engine connector's small helpers (engine/connector/support.ts) and its feed table (feeds.ts): hashes that
// ignore key order, bounded and ordered work with the connector's failure rules, command ids within the event
// store's limit, the de-duplication key and change time of each feed's rows.
import { describe, expect, it } from "vitest";
import { commandIdOf, forEachLimited, handleInOrder, hashOf, isPermanentRejection, markerOf, stableStringify } from "../../../../engine/connector/support.ts";
import { changeRowOf, FEED_ORDER, feedEnabled, readFeed } from "../../../../engine/connector/feeds.ts";
import type { EngineAdapter, EngineTask, FinishedTask, ProcessInstanceInfo } from "../../../../engine/connector/engine-adapter.ts";

const rejection = (type: string) => Object.assign(new Error(type), { type });

describe("stableStringify and hashOf", () => {
  it("give the same text for the same content whatever the key order, leaving undefined fields out", () => {
    expect(stableStringify({ b: 1, a: [2, { d: null, c: "x" }], e: undefined })).toBe('{"a":[2,{"c":"x","d":null}],"b":1}');
    expect(hashOf({ a: 1, b: 2 })).toBe(hashOf({ b: 2, a: 1 }));
    expect(hashOf({ a: 1 })).not.toBe(hashOf({ a: 2 }));
    expect(hashOf({ a: 1 })).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe("forEachLimited", () => {
  it("never runs more than the limit at once, does every item and returns the failures", async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    const failures = await forEachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      if (n % 3 === 0) throw new Error(`no ${n}`);
      done.push(n);
    });
    expect(most).toBe(3);
    expect(done.sort()).toEqual([1, 2, 4, 5, 7]);
    expect(failures.map((f) => f.item).sort()).toEqual([3, 6]);
  });
});

describe("handleInOrder", () => {
  it("stops at a transient failure: that row and all after it count as failed", async () => {
    const seen: string[] = [];
    const failures = await handleInOrder(["a", "b", "c", "d"], async (row) => {
      seen.push(row);
      if (row === "b") throw new Error("engine unreachable");
    });
    expect(seen).toEqual(["a", "b"]);
    expect(failures.map((f) => f.item)).toEqual(["b", "c", "d"]);
  });

  it("passes over a row the pool refuses for good and goes on", async () => {
    const seen: string[] = [];
    const failures = await handleInOrder(["a", "b", "c"], async (row) => {
      seen.push(row);
      if (row === "b") throw rejection("VALIDATION_ERROR");
    });
    expect(seen).toEqual(["a", "b", "c"]);
    expect(failures.map((f) => f.item)).toEqual(["b"]);
  });

  it("knows which refusals are permanent", () => {
    expect(isPermanentRejection(rejection("EVENT_TOO_LARGE"))).toBe(true);
    expect(isPermanentRejection(rejection("INVALID_EVENT_DATA"))).toBe(true);
    expect(isPermanentRejection(rejection("NOT_FOUND"))).toBe(false);
    expect(isPermanentRejection(new Error("timeout"))).toBe(false);
  });
});

describe("commandIdOf and markerOf", () => {
  it("joins the parts after the application, and hashes an id longer than 300 characters", () => {
    expect(commandIdOf("app", "task", "t1", "v3")).toBe("app:task:t1:v3");
    const long = commandIdOf("app", "x".repeat(400));
    expect(long.length).toBeLessThanOrEqual(300);
    expect(long).toMatch(/^app:[0-9a-f]{16}$/);
    expect(commandIdOf("app", "x".repeat(400))).toBe(long);
  });

  it("marks a task's version by its creation and last update", () => {
    expect(markerOf({ createTime: "2026-01-01T00:00:00.000Z", lastUpdated: null })).toBe("2026-01-01T00:00:00.000Z|");
    expect(markerOf({ createTime: "c", lastUpdated: "u" })).toBe("c|u");
  });
});

describe("feeds", () => {
  it("reads definitions before instances before tasks, ends last", () => {
    expect(FEED_ORDER.indexOf("deployments")).toBeLessThan(FEED_ORDER.indexOf("startedInstances"));
    expect(FEED_ORDER.indexOf("startedInstances")).toBeLessThan(FEED_ORDER.indexOf("tasks"));
    expect(FEED_ORDER.slice(-2)).toEqual(["finishedTasks", "finishedInstances"]);
    expect(new Set(FEED_ORDER).size).toBe(7);
  });

  it("switches feeds off with what is not collected", () => {
    const none = { collectProcessDefinitions: false, collectProcessInstances: false };
    expect(FEED_ORDER.filter((feed) => feedEnabled(none, feed))).toEqual(["tasks", "variableUpdates", "finishedTasks"]);
    const all = { collectProcessDefinitions: true, collectProcessInstances: true };
    expect(FEED_ORDER.every((feed) => feedEnabled(all, feed))).toBe(true);
  });

  it("keys a task row by id and version, and times it by its last update, else its creation", () => {
    const task = { id: "t1", createTime: "2026-01-01T00:00:00.000Z", lastUpdated: "2026-01-02T00:00:00.000Z" } as EngineTask;
    expect(changeRowOf("tasks", task)).toEqual({ key: "t1@2026-01-01T00:00:00.000Z|2026-01-02T00:00:00.000Z", time: "2026-01-02T00:00:00.000Z" });
    expect(changeRowOf("tasks", { ...task, lastUpdated: null }).time).toBe("2026-01-01T00:00:00.000Z");
    expect(changeRowOf("tasks", { ...task, lastUpdated: null, createTime: null }).time).toBe("1970-01-01T00:00:00.000Z");
  });

  it("times the other feeds' rows by their own change time", () => {
    expect(changeRowOf("finishedTasks", { id: "t1", endTime: "E" } as FinishedTask)).toEqual({ key: "t1", time: "E" });
    expect(changeRowOf("deployments", { id: "d1", deploymentTime: "D" })).toEqual({ key: "d1", time: "D" });
    const instance = { id: "i1", startTime: "S", endTime: null } as ProcessInstanceInfo;
    expect(changeRowOf("startedInstances", instance)).toEqual({ key: "i1", time: "S" });
    expect(changeRowOf("finishedInstances", instance)).toEqual({ key: "i1", time: "S" });
    expect(changeRowOf("finishedInstances", { ...instance, endTime: "F" })).toEqual({ key: "i1", time: "F" });
    expect(changeRowOf("instanceOperations", { id: "o1", time: "O", processInstanceId: "i1", processDefinitionKey: null, operation: "Suspend" })).toEqual({ key: "o1", time: "O" });
  });

  it("reads each feed through its own adapter listing", async () => {
    const asked: string[] = [];
    const listing = (name: string) => async () => {
      asked.push(name);
      return { rows: [], done: true };
    };
    const adapter = {
      listTasksChangedSince: listing("tasks"),
      listFinishedTasksSince: listing("finishedTasks"),
      listDeploymentsSince: listing("deployments"),
      listInstancesStartedSince: listing("startedInstances"),
      listInstancesFinishedSince: listing("finishedInstances"),
      listInstanceOperationsSince: listing("instanceOperations"),
      listVariableUpdatesSince: listing("variableUpdates"),
    } as unknown as EngineAdapter;
    for (const feed of FEED_ORDER) await readFeed(adapter, feed, { since: null, firstResult: 0, maxResults: 10 });
    expect(asked).toEqual([...FEED_ORDER]);
  });
});
