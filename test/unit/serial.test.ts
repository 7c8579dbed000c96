// lib/serial.ts: one queue per key — the order of an aggregate's commands on a node and of an embedded engine's
// work on one process instance rests on it.
import { describe, expect, it } from "vitest";
import { KeyedSerialQueue } from "../../lib/serial.ts";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("KeyedSerialQueue", () => {
  it("runs work for one key one after another, different keys side by side, and forgets idle keys", async () => {
    const queue = new KeyedSerialQueue();
    const log: string[] = [];
    let releaseA1!: () => void;
    const a1 = queue.run("a", () => new Promise<string>((resolve) => (releaseA1 = () => (log.push("a1 done"), resolve("a1")))));
    const a2 = queue.run("a", async () => (log.push("a2 runs"), "a2"));
    const b1 = queue.run("b", async () => (log.push("b1 runs"), "b1"));
    await tick();
    // b did not wait for a; a2 waits for a1.
    expect(log).toEqual(["b1 runs"]);
    expect(queue.size).toBe(1);
    releaseA1();
    expect(await Promise.all([a1, a2, b1])).toEqual(["a1", "a2", "b1"]);
    expect(log).toEqual(["b1 runs", "a1 done", "a2 runs"]);
    await tick();
    expect(queue.size).toBe(0);
  });

  it("gives a failure to its caller only; the next work for the key still runs", async () => {
    const queue = new KeyedSerialQueue();
    const failed = queue.run("a", async () => {
      throw new Error("boom");
    });
    const next = queue.run("a", async () => "after");
    await expect(failed).rejects.toThrow("boom");
    expect(await next).toBe("after");
  });
});
