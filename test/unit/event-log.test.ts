// stores/event-log.ts without a database: append validation, group commit (batching, per-stream order,
// concurrency, retries, isolation of a bad append, wake-ups), guarded reads and the orderly close.
import { describe, expect, it } from "vitest";
import { appendResult, EventLog, GroupCommit, toAppendRequest, type AppendedNotice, type EventLogStore } from "../../stores/event-log.ts";
import type { AppendOutcome, AppendRequest, ProcessorRow } from "../../stores/event-store.ts";
import { ErrorTypes } from "../../lib/errors.ts";

const tick = () => new Promise((resolve) => setImmediate(resolve));

function errorOf(work: () => unknown): { type?: string; code?: number; data?: Record<string, unknown>; message: string } {
  try {
    work();
  } catch (err) {
    return err as { type?: string; message: string };
  }
  throw new Error("expected an error");
}

async function rejectionOf(promise: Promise<unknown>): Promise<{ type?: string; code?: unknown; message: string }> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: { type?: string; message: string }) => err,
  );
}

const limits = { maxEventBytes: 100, currentVersion: (type: string) => (type === "Renamed" ? 3 : 1), newEventId: () => "id-1" };

function request(streamId: string, ...types: string[]): AppendRequest {
  return {
    streamId,
    expectedVersion: null,
    commandId: null,
    events: (types.length ? types : ["Happened"]).map((type) => ({ eventId: `${streamId}-${type}`, type, schemaVersion: 1, data: {}, metadata: {} })),
  };
}

/** A write function that records its batches and answers when told (or at once). */
function recordingWrite(options: { manual?: boolean; fail?: (requests: AppendRequest[]) => unknown } = {}) {
  const batches: string[][] = [];
  const waiting: (() => void)[] = [];
  let position = 0;
  const write = async (requests: AppendRequest[]): Promise<AppendOutcome[]> => {
    batches.push(requests.map((r) => r.streamId));
    if (options.manual) await new Promise<void>((resolve) => waiting.push(resolve));
    const failure = options.fail?.(requests);
    if (failure) throw failure;
    return requests.map((r) => ({ outcome: "appended", streamVersion: r.events.length, globalPosition: (position += r.events.length) }));
  };
  const releaseAll = () => waiting.splice(0).forEach((resolve) => resolve());
  return { write, batches, releaseAll, waiting };
}

describe("toAppendRequest", () => {
  it("fills in event ids, schema versions, metadata and the optional fields", () => {
    const result = toAppendRequest(
      { streamId: "s-1", events: [{ type: "Renamed", data: { name: "a" } }, { type: "Placed", data: {}, metadata: { user: "u" }, schemaVersion: 2 }] },
      limits,
    );
    expect(result).toEqual({
      streamId: "s-1",
      expectedVersion: null,
      commandId: null,
      events: [
        { eventId: "id-1", type: "Renamed", schemaVersion: 3, data: { name: "a" }, metadata: {} },
        { eventId: "id-1", type: "Placed", schemaVersion: 2, data: {}, metadata: { user: "u" } },
      ],
    });
    expect(toAppendRequest({ streamId: "s", expectedVersion: 0, commandId: "c", events: [{ type: "T", data: {} }] }, limits)).toMatchObject({
      expectedVersion: 0,
      commandId: "c",
    });
  });

  it("refuses data that is not plain JSON, naming the field", () => {
    const err = errorOf(() => toAppendRequest({ streamId: "s", events: [{ type: "T", data: {} }, { type: "T", data: { at: new Date() } as never }] }, limits));
    expect(err.type).toBe(ErrorTypes.INVALID_EVENT_DATA);
    expect(err.data).toMatchObject({ field: "events[1].data.at", streamId: "s" });
    const inMetadata = errorOf(() => toAppendRequest({ streamId: "s", events: [{ type: "T", data: {}, metadata: { n: Number.NaN } }] }, limits));
    expect(inMetadata.type).toBe(ErrorTypes.INVALID_EVENT_DATA);
    expect(String(inMetadata.data?.field)).toMatch(/^events\[0\]\.metadata/);
    const array = errorOf(() => toAppendRequest({ streamId: "s", events: [{ type: "T", data: [1] as never }] }, limits));
    expect(array.type).toBe(ErrorTypes.INVALID_EVENT_DATA);
    expect(array.data).toMatchObject({ field: "events[0].data" });
  });

  it("refuses an event larger than the limit, data and metadata counted together", () => {
    // {"x":"…"} is 8 bytes plus the string; {} is 2.
    expect(() => toAppendRequest({ streamId: "s", events: [{ type: "T", data: { x: "a".repeat(90) } }] }, limits)).not.toThrow();
    const err = errorOf(() => toAppendRequest({ streamId: "s", events: [{ type: "T", data: { x: "a".repeat(90) }, metadata: { y: 1 } }] }, limits));
    expect(err.type).toBe(ErrorTypes.EVENT_TOO_LARGE);
    expect(err.data).toMatchObject({ field: "events[0]", size: 105, limit: 100 });
  });
});

describe("appendResult", () => {
  it("answers appended and duplicate outcomes, and turns a conflict into CONFLICT with the current version", () => {
    const r = request("s");
    expect(appendResult(r, { outcome: "appended", streamVersion: 2, globalPosition: 7 })).toEqual({ streamVersion: 2, globalPosition: 7, duplicate: false });
    expect(appendResult(r, { outcome: "duplicate", streamVersion: 2, globalPosition: 7 })).toEqual({ streamVersion: 2, globalPosition: 7, duplicate: true });
    const err = errorOf(() => appendResult({ ...r, expectedVersion: 1 }, { outcome: "conflict", currentVersion: 4 }));
    expect(err.type).toBe(ErrorTypes.CONFLICT);
    expect(err.data).toEqual({ streamId: "s", expectedVersion: 1, currentVersion: 4 });
  });
});

describe("GroupCommit", () => {
  it("writes concurrent appends to different streams in one transaction, ordered by stream, and wakes consumers once", async () => {
    const { write, batches } = recordingWrite();
    const notices: AppendedNotice[] = [];
    const commits = new GroupCommit({ maxBatch: 10, maxConcurrentBatches: 1, write, onAppended: (n) => notices.push(n) });
    const first = commits.submit(request("c", "A"));
    const rest = [commits.submit(request("b", "B", "C")), commits.submit(request("a", "A"))];
    await Promise.all([first, ...rest]);
    // The first goes alone (nothing else was queued yet); the two that queued meanwhile share the next.
    expect(batches).toEqual([["c"], ["a", "b"]]);
    expect(notices).toEqual([
      { globalPosition: 1, count: 1, types: ["A"] },
      { globalPosition: 4, count: 3, types: ["A", "B", "C"] },
    ]);
  });

  it("never puts two appends to one stream in one transaction or in two at once, and keeps their order", async () => {
    const { write, batches, releaseAll, waiting } = recordingWrite({ manual: true });
    const commits = new GroupCommit({ maxBatch: 10, maxConcurrentBatches: 4, write });
    const order: string[] = [];
    const done = [
      commits.submit(request("s", "First")).then(() => order.push("first")),
      commits.submit(request("s", "Second")).then(() => order.push("second")),
      commits.submit(request("t")).then(() => order.push("t")),
    ];
    await tick();
    // "s" runs; the second append to "s" waits although three more transactions could start; "t" need not wait.
    expect(batches).toEqual([["s"], ["t"]]);
    expect(commits.pending).toBe(3);
    releaseAll();
    await tick();
    await tick();
    expect(batches).toEqual([["s"], ["t"], ["s"]]);
    while (waiting.length) {
      releaseAll();
      await tick();
    }
    await Promise.all(done);
    expect(order.indexOf("first")).toBeLessThan(order.indexOf("second"));
    expect(commits.pending).toBe(0);
  });

  it("groups at most maxBatch appends and runs at most maxConcurrentBatches transactions", async () => {
    const { write, batches, releaseAll, waiting } = recordingWrite({ manual: true });
    const commits = new GroupCommit({ maxBatch: 2, maxConcurrentBatches: 2, write });
    const all = ["a", "b", "c", "d", "e", "f", "g"].map((s) => commits.submit(request(s)));
    await tick();
    // Each submit starts a transaction while one may start: "a" and "b" alone, the rest queue.
    expect(batches).toEqual([["a"], ["b"]]);
    let mostInFlight = 0;
    while (waiting.length) {
      mostInFlight = Math.max(mostInFlight, waiting.length);
      releaseAll();
      await tick();
      await tick();
    }
    await Promise.all(all);
    expect(mostInFlight).toBe(2);
    expect(batches.every((batch) => batch.length <= 2)).toBe(true);
    expect(batches.slice(2)).toEqual([["c", "d"], ["e", "f"], ["g"]]);
  });

  it("retries a batch that fails transiently, with backoff, then succeeds", async () => {
    let failures = 2;
    const { write, batches } = recordingWrite({ fail: () => (failures-- > 0 ? Object.assign(new Error("serialization failure"), { code: "40001" }) : null) });
    const waits: number[] = [];
    const commits = new GroupCommit({ maxBatch: 10, maxConcurrentBatches: 1, write, backoff: async (attempt) => void waits.push(attempt) });
    await expect(commits.submit(request("s"))).resolves.toMatchObject({ outcome: "appended" });
    expect(batches).toHaveLength(3);
    expect(waits).toEqual([1, 2]);
  });

  it("gives up on a transient failure after the allowed attempts", async () => {
    const { write, batches } = recordingWrite({ fail: () => Object.assign(new Error("deadlock"), { code: "40P01" }) });
    const commits = new GroupCommit({ maxBatch: 10, maxConcurrentBatches: 1, write, attempts: 3, backoff: async () => undefined });
    const err = await rejectionOf(commits.submit(request("s")));
    expect(err.code).toBe("40P01");
    expect(batches).toHaveLength(3);
  });

  it("lets one bad append fail alone: a failing batch is written again one append at a time", async () => {
    const { write, batches } = recordingWrite({
      fail: (requests) => (requests.some((r) => r.streamId === "bad") ? Object.assign(new Error("check violation"), { code: "23514" }) : null),
    });
    const commits = new GroupCommit({ maxBatch: 10, maxConcurrentBatches: 1, write, backoff: async () => undefined });
    const blocker = commits.submit(request("first"));
    const good = commits.submit(request("good"));
    const bad = commits.submit(request("bad"));
    const other = commits.submit(request("other"));
    await blocker;
    await expect(good).resolves.toMatchObject({ outcome: "appended" });
    await expect(other).resolves.toMatchObject({ outcome: "appended" });
    expect((await rejectionOf(bad)).message).toBe("check violation");
    // The non-transient failure is not retried as a batch.
    expect(batches).toEqual([["first"], ["bad", "good", "other"], ["bad"], ["good"], ["other"]]);
  });

  it("fails every append of a batch with a retryable 503 when the database cannot be reached", async () => {
    const { write, batches } = recordingWrite({ fail: () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
    const commits = new GroupCommit({ maxBatch: 10, maxConcurrentBatches: 1, write, attempts: 2, backoff: async () => undefined });
    const blocker = rejectionOf(commits.submit(request("x")));
    const errors = await Promise.all([blocker, rejectionOf(commits.submit(request("a"))), rejectionOf(commits.submit(request("b")))]);
    expect(errors.map((e) => e.type)).toEqual([ErrorTypes.UNAVAILABLE, ErrorTypes.UNAVAILABLE, ErrorTypes.UNAVAILABLE]);
    // Two attempts per batch, and no one-by-one retry during an outage.
    expect(batches).toEqual([["x"], ["x"], ["a", "b"], ["a", "b"]]);
  });

  it("sends no wake-up for a commit that appended nothing", async () => {
    const notices: AppendedNotice[] = [];
    const commits = new GroupCommit({
      maxBatch: 10,
      maxConcurrentBatches: 1,
      write: async (requests) => requests.map(() => ({ outcome: "duplicate", streamVersion: 1, globalPosition: 1 })),
      onAppended: (n) => notices.push(n),
    });
    await commits.submit(request("s"));
    expect(notices).toEqual([]);
  });
});

describe("EventLog", () => {
  function fakeStore(overrides: Partial<EventLogStore> = {}): EventLogStore {
    const rows: ProcessorRow[] = [
      { name: "view", token: "t-5", globalPosition: 5, owner: "n1/view/1", leaseUntil: null, status: "live", lastError: null, updatedAt: "2026-01-01T00:00:00.000Z" },
    ];
    return {
      append: async (requests) => requests.map((r, i) => ({ outcome: "appended", streamVersion: r.events.length, globalPosition: i + 1 })),
      processors: async () => rows,
      head: async () => ({ globalPosition: 9, token: "t-9" }),
      countAfter: async (token, cap) => Math.min(token === "t-5" ? 4 : 0, cap),
      ...overrides,
    };
  }
  const options = { ...limits, maxBatch: 10, maxConcurrentBatches: 1 };

  it("validates, appends and answers", async () => {
    const log = new EventLog(fakeStore(), options);
    await expect(log.append({ streamId: "s", events: [{ type: "T", data: {} }] })).resolves.toEqual({ streamVersion: 1, globalPosition: 1, duplicate: false });
    const tooLarge = await rejectionOf(log.append({ streamId: "s", events: [{ type: "T", data: { x: "a".repeat(200) } }] }));
    expect(tooLarge.type).toBe(ErrorTypes.EVENT_TOO_LARGE);
    const conflicting = new EventLog(fakeStore({ append: async () => [{ outcome: "conflict", currentVersion: 3 }] }), options);
    expect((await rejectionOf(conflicting.append({ streamId: "s", expectedVersion: 1, events: [{ type: "T", data: {} }] }))).type).toBe(ErrorTypes.CONFLICT);
  });

  it("turns an unreachable database into a retryable 503 on reads, and passes other errors on", async () => {
    const log = new EventLog(fakeStore(), options);
    expect(await log.read(async () => 42)).toBe(42);
    const outage = await rejectionOf(log.read(() => Promise.reject(Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" }))));
    expect(outage.type).toBe(ErrorTypes.UNAVAILABLE);
    const other = await rejectionOf(log.read(() => Promise.reject(new Error("syntax error"))));
    expect(other.message).toBe("syntax error");
  });

  it("lists the processors with their lag and the head position", async () => {
    const log = new EventLog(fakeStore(), options);
    expect(await log.processors()).toEqual([expect.objectContaining({ name: "view", token: "t-5", lag: 4, headPosition: 9 })]);
  });

  it("closes after the appends in flight, then refuses appends and reads", async () => {
    let release!: () => void;
    const log = new EventLog(
      fakeStore({
        append: async (requests) => {
          await new Promise<void>((resolve) => (release = resolve));
          return requests.map(() => ({ outcome: "appended", streamVersion: 1, globalPosition: 1 }));
        },
      }),
      options,
    );
    const inFlight = log.append({ streamId: "s", events: [{ type: "T", data: {} }] });
    let closed = false;
    const closing = log.close().then(() => (closed = true));
    await tick();
    expect(closed).toBe(false);
    release();
    await expect(inFlight).resolves.toMatchObject({ streamVersion: 1 });
    await closing;
    expect((await rejectionOf(log.append({ streamId: "s", events: [{ type: "T", data: {} }] }))).type).toBe(ErrorTypes.UNAVAILABLE);
    expect((await rejectionOf(log.read(async () => 1))).type).toBe(ErrorTypes.UNAVAILABLE);
  });
});
