// The task list's live event streams (gateway/event-streams.ts): delivery by principals, the retention window, and
// resumption after Last-Event-ID.
import { afterEach, describe, expect, it, vi } from "vitest";
import { compareEventIds, eventFor, EventStreams, viewerOf, type ChangeBatch } from "../../../gateway/event-streams.ts";
import type { ViewChange } from "../../../services/view.service.ts";

class FakeResponse {
  status = 0;
  chunks: string[] = [];
  ended = false;
  private readonly closeListeners: (() => void)[] = [];
  writeHead(status: number) {
    this.status = status;
  }
  write(chunk: string) {
    this.chunks.push(chunk);
  }
  end() {
    this.ended = true;
    for (const l of this.closeListeners) l();
  }
  on(_event: "close", listener: () => void) {
    this.closeListeners.push(listener);
  }
  /** The events written: their name and id (a comment or retry line is none). */
  get events(): { id?: string; event: string; data: Record<string, unknown> }[] {
    return this.chunks
      .filter((c) => c.includes("event: "))
      .map((c) => {
        const field = (name: string) => c.split("\n").find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2);
        return { id: field("id"), event: field("event")!, data: JSON.parse(field("data")!) as Record<string, unknown> };
      });
  }
}
const fakeRequest = () => ({ on: () => undefined });

const task = (id: string, before: string[], after: string[], extra: Partial<ViewChange> = {}): ViewChange => ({ collection: "tasks", id, change: "updated", before, after, ...extra });
const batch = (token: string, ...changes: ViewChange[]): ChangeBatch => ({ token, globalPosition: Number(token.split(":")[1]), changes });
const unlimited = () => () => undefined;
const alice = { username: "alice", groups: ["sales"] };

afterEach(() => vi.useRealTimers());

describe("eventFor: what a viewer sees of a change", () => {
  const viewer = viewerOf(alice);
  it("follows the principals before and after the change", () => {
    expect(eventFor(viewer, task("t", [], ["group:sales"]))).toBe("task-added");
    expect(eventFor(viewer, task("t", ["user:alice"], ["group:sales"]))).toBe("task-changed");
    expect(eventFor(viewer, task("t", ["group:sales"], ["user:bob"]))).toBe("task-removed");
    expect(eventFor(viewer, task("t", ["user:bob"], ["group:hr"]))).toBeNull();
  });
  it("tells a user of a refusal of their own interaction even on a task no longer theirs", () => {
    expect(eventFor(viewer, task("t", [], [], { refusal: { interaction: "claim", reason: "no", username: "alice" } }))).toBe("task-changed");
    expect(eventFor(viewer, task("t", [], [], { refusal: { interaction: "claim", reason: "no", username: "bob" } }))).toBeNull();
  });
  it("has one event for data entries, visible before or after", () => {
    const entry = (before: string[], after: string[]): ViewChange => ({ collection: "dataEntries", id: "d", change: "updated", before, after });
    expect(eventFor(viewer, entry(["group:sales"], []))).toBe("data-entry-changed");
    expect(eventFor(viewer, entry([], ["user:alice"]))).toBe("data-entry-changed");
    expect(eventFor(viewer, entry(["user:bob"], []))).toBeNull();
  });
});

describe("compareEventIds", () => {
  it("orders by token, then by index within the batch", () => {
    expect(compareEventIds("1:5/0", "1:5/1")).toBeLessThan(0);
    expect(compareEventIds("1:5/10", "1:5/9")).toBeGreaterThan(0);
    expect(compareEventIds("2:3/0", "1:9/4")).toBeGreaterThan(0);
    expect(compareEventIds("1:5/2", "1:5/2")).toBe(0);
  });
  it("puts every id after one that is no token", () => {
    expect(compareEventIds("1:5/0", "garbage")).toBe(1);
  });
});

describe("EventStreams", () => {
  it("delivers each change only to the streams whose user may see it, with ids and positions", () => {
    const streams = new EventStreams({ retentionMs: 60_000, retentionEvents: 100, limit: unlimited });
    const a = new FakeResponse();
    const b = new FakeResponse();
    expect(streams.open(fakeRequest(), a, alice)).toBe(true);
    expect(streams.open(fakeRequest(), b, { username: "bob", groups: [] })).toBe(true);
    expect(a.status).toBe(200);
    streams.publishChanges(batch("1:7", task("t1", [], ["group:sales"]), task("t2", [], ["user:bob"]), { collection: "processDefinitions" as ViewChange["collection"], id: "p", change: "created", before: [], after: ["group:sales"] }));
    expect(a.events).toEqual([{ id: "1:7/0", event: "task-added", data: { id: "t1", change: "updated", position: 7 } }]);
    expect(b.events).toEqual([{ id: "1:7/1", event: "task-added", data: { id: "t2", change: "updated", position: 7 } }]);
    // Only tasks and data entries are kept.
    expect(streams.history.map((h) => h.id)).toEqual(["1:7/0", "1:7/1"]);
  });

  it("resumes after Last-Event-ID with what the user missed, then goes on live", () => {
    const streams = new EventStreams({ retentionMs: 60_000, retentionEvents: 100, limit: unlimited });
    streams.publishChanges(batch("1:1", task("t1", [], ["user:alice"])));
    streams.publishChanges(batch("1:2", task("t2", [], ["user:alice"]), task("t3", [], ["user:bob"]), task("t4", ["user:alice"], [])));
    const res = new FakeResponse();
    streams.open(fakeRequest(), res, alice, { lastEventId: "1:2/0" });
    expect(res.events.map((e) => [e.id, e.event])).toEqual([["1:2/2", "task-removed"]]);
    streams.publishChanges(batch("1:3", task("t5", [], ["group:sales"])));
    expect(res.events.map((e) => e.id)).toEqual(["1:2/2", "1:3/0"]);
  });

  it("sends no history to a stream opened without Last-Event-ID", () => {
    const streams = new EventStreams({ retentionMs: 60_000, retentionEvents: 100, limit: unlimited });
    streams.publishChanges(batch("1:1", task("t1", [], ["user:alice"])));
    const res = new FakeResponse();
    streams.open(fakeRequest(), res, alice);
    expect(res.events).toEqual([]);
  });

  it("keeps history within the retention window: by age and by count", () => {
    let now = 1_000_000;
    const streams = new EventStreams({ retentionMs: 10_000, retentionEvents: 3, limit: unlimited, now: () => now });
    streams.publishChanges(batch("1:1", task("t1", [], ["user:alice"])));
    now += 11_000;
    streams.publishChanges(batch("1:2", task("t2", [], ["user:alice"])));
    expect(streams.history.map((h) => h.id)).toEqual(["1:2/0"]);
    streams.publishChanges(batch("1:3", task("a", [], []), task("b", [], []), task("c", [], [])));
    expect(streams.history.map((h) => h.id)).toEqual(["1:3/0", "1:3/1", "1:3/2"]);
  });

  it("sends a refused start to the requester's streams only, without an id", () => {
    const streams = new EventStreams({ retentionMs: 60_000, retentionEvents: 100, limit: unlimited });
    const a = new FakeResponse();
    const b = new FakeResponse();
    streams.open(fakeRequest(), a, alice);
    streams.open(fakeRequest(), b, { username: "bob", groups: ["sales"] });
    streams.publishStartRefusal({ processDefinitionId: "p:1", requestId: "r1", requestedBy: "alice", reason: "engine says no", globalPosition: 9 });
    expect(a.events).toEqual([{ id: undefined, event: "process-start-refused", data: { processDefinitionId: "p:1", requestId: "r1", reason: "engine says no", position: 9 } }]);
    expect(b.events).toEqual([]);
  });

  it("refuses a stream over the cap without writing, and releases the slot when a stream closes", () => {
    let open = 0;
    const limit = () => (open >= 1 ? null : (open++, () => void open--));
    const streams = new EventStreams({ retentionMs: 60_000, retentionEvents: 100, limit });
    const first = new FakeResponse();
    expect(streams.open(fakeRequest(), first, alice)).toBe(true);
    const second = new FakeResponse();
    expect(streams.open(fakeRequest(), second, alice)).toBe(false);
    expect(second.chunks).toEqual([]);
    first.end();
    expect(streams.openStreams).toBe(0);
    expect(streams.open(fakeRequest(), new FakeResponse(), alice)).toBe(true);
  });

  it("ends a stream when its credential expires, and ends every stream when told to", () => {
    vi.useFakeTimers();
    const streams = new EventStreams({ retentionMs: 60_000, retentionEvents: 100, limit: unlimited });
    const expiring = new FakeResponse();
    const lasting = new FakeResponse();
    streams.open(fakeRequest(), expiring, alice, { expiresAt: Date.now() + 1000 });
    streams.open(fakeRequest(), lasting, alice, { expiresAt: null });
    vi.advanceTimersByTime(1001);
    expect(expiring.events.map((e) => e.event)).toEqual(["token-expired"]);
    expect(expiring.ended).toBe(true);
    expect(lasting.ended).toBe(false);
    vi.advanceTimersByTime(15_000);
    expect(lasting.chunks.at(-1)).toBe(": keep-alive\n\n");
    streams.endAll();
    expect(lasting.ended).toBe(true);
    expect(streams.openStreams).toBe(0);
  });
});
