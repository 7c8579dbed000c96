// The gateway's kept answers (gateway/answer-cache.ts): bounded in bytes, least recently used out first, off at 0.
import { describe, expect, it } from "vitest";
import { AnswerCache } from "../../gateway/answer-cache.ts";

const answer = (version: string, length: number) => ({ version, body: Buffer.alloc(length, "x"), total: length, capped: false });

describe("AnswerCache", () => {
  it("returns what was kept, and a newer answer for the same question replaces the older", () => {
    const cache = new AnswerCache(1_000_000);
    cache.set("q", answer("1:a", 10));
    expect(cache.get("q")).toEqual(answer("1:a", 10));
    cache.set("q", answer("1:b", 20));
    expect(cache.get("q")?.version).toBe("1:b");
    expect(cache.size).toBe(1);
    expect(cache.get("other")).toBeUndefined();
  });

  it("stays within its bound, dropping the least recently used answers first", () => {
    // Each answer: 1000 + 2 × (1 + 3) + 64 = 1072 bytes; three fit in 3500.
    const cache = new AnswerCache(3500);
    cache.set("a", answer("1:a", 1000));
    cache.set("b", answer("1:a", 1000));
    cache.set("c", answer("1:a", 1000));
    cache.get("a"); // a is now the most recently used; b the least
    cache.set("d", answer("1:a", 1000));
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBeDefined();
    expect(cache.get("c")).toBeDefined();
    expect(cache.get("d")).toBeDefined();
    expect(cache.usedBytes).toBeLessThanOrEqual(3500);
    expect(cache.usedBytes).toBe(3 * 1072);
  });

  it("keeps nothing larger than its bound, and nothing at all when its bound is 0", () => {
    const small = new AnswerCache(100);
    small.set("big", answer("1:a", 1000));
    expect(small.get("big")).toBeUndefined();
    expect(small.usedBytes).toBe(0);
    const off = new AnswerCache(0);
    expect(off.enabled).toBe(false);
    off.set("q", answer("1:a", 1));
    expect(off.get("q")).toBeUndefined();
  });
});
