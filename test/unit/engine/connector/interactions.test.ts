// Pool → engine (engine/connector/interactions.ts) against a fake adapter: which events are the application's,
// which engine calls each interaction makes (an unclaim gives back only the claim the user saw, a completion
// claims for the completer first), and the retries of transient engine failures.
import { describe, expect, it } from "vitest";
import { isOwnInteraction, taskInteractionOf, withEngineRetries } from "../../../../engine/connector/interactions.ts";
import { EngineError, isEngineError, type EngineAdapter, type EngineTask } from "../../../../engine/connector/engine-adapter.ts";
import type { JsonObject } from "../../../../domain/types.ts";

/** An adapter that records the interaction calls and holds one task with the given assignee (null: no task). */
function fakeAdapter(assignee: string | null | undefined) {
  const calls: string[] = [];
  const adapter = {
    getTask: async (id: string) => (assignee === undefined ? null : ({ id, assignee } as EngineTask)),
    claim: async (id: string, user: string) => void calls.push(`claim ${id} ${user}`),
    unclaim: async (id: string) => void calls.push(`unclaim ${id}`),
    setFollowUpDate: async (id: string, date: string | null) => void calls.push(`followUp ${id} ${date}`),
    complete: async (id: string, variables: JsonObject) => void calls.push(`complete ${id} ${JSON.stringify(variables)}`),
  } as unknown as EngineAdapter;
  return { adapter, calls };
}

function event(type: string, data: JsonObject, actor?: string): { type: string; data: JsonObject; metadata: JsonObject } {
  const metadata: JsonObject = actor ? { actor } : {};
  return { type, data, metadata };
}

describe("isOwnInteraction", () => {
  it("tells the application's events by their source reference, a start request by its application name", () => {
    expect(isOwnInteraction(event("TaskClaimed", { id: "t1", sourceReference: { applicationName: "app" } }), "app")).toBe(true);
    expect(isOwnInteraction(event("TaskClaimed", { id: "t1", sourceReference: { applicationName: "other" } }), "app")).toBe(false);
    expect(isOwnInteraction(event("ProcessStartRequested", { applicationName: "app" }), "app")).toBe(true);
    expect(isOwnInteraction(event("ProcessStartRequested", { sourceReference: { applicationName: "app" } }), "app")).toBe(false);
  });
});

describe("taskInteractionOf", () => {
  it("claims for the assignee and defers with the follow-up date; the actor is the user otherwise", async () => {
    const { adapter, calls } = fakeAdapter(null);
    const claim = taskInteractionOf(event("TaskClaimed", { id: "t1", assignee: "ann" }, "bob"), adapter)!;
    expect([claim.interaction, claim.username]).toEqual(["claim", "ann"]);
    await claim.perform();
    const defer = taskInteractionOf(event("TaskDeferred", { id: "t1", followUpDate: "2026-02-01T00:00:00.000Z" }, "bob"), adapter)!;
    expect([defer.interaction, defer.username]).toEqual(["defer", "bob"]);
    await defer.perform();
    await taskInteractionOf(event("TaskUndeferred", { id: "t1" }, "bob"), adapter)!.perform();
    expect(calls).toEqual(["claim t1 ann", "followUp t1 2026-02-01T00:00:00.000Z", "followUp t1 null"]);
  });

  it("gives back only the claim the user saw", async () => {
    const held = fakeAdapter("carl");
    const unclaim = taskInteractionOf(event("TaskUnclaimed", { id: "t1", previousAssignee: "ann" }), held.adapter)!;
    const err = await unclaim.perform().catch((e: unknown) => e);
    expect(isEngineError(err, "conflict")).toBe(true);
    expect(held.calls).toEqual([]);
    const own = fakeAdapter("ann");
    await taskInteractionOf(event("TaskUnclaimed", { id: "t1", previousAssignee: "ann" }), own.adapter)!.perform();
    expect(own.calls).toEqual(["unclaim t1"]);
    const free = fakeAdapter(null);
    await taskInteractionOf(event("TaskUnclaimed", { id: "t1", previousAssignee: "ann" }), free.adapter)!.perform();
    expect(free.calls).toEqual([]);
  });

  it("completes as the completer: claims an unclaimed task first, refuses one claimed by someone else, says gone for no task", async () => {
    const completion = event("TaskToBeCompleted", { id: "t1", assignee: "ann", payload: { ok: true } });
    const free = fakeAdapter(null);
    await taskInteractionOf(completion, free.adapter)!.perform();
    expect(free.calls).toEqual(["claim t1 ann", 'complete t1 {"ok":true}']);
    const other = fakeAdapter("carl");
    expect(isEngineError(await taskInteractionOf(completion, other.adapter)!.perform().catch((e: unknown) => e), "conflict")).toBe(true);
    expect(other.calls).toEqual([]);
    const gone = fakeAdapter(undefined);
    expect(isEngineError(await taskInteractionOf(completion, gone.adapter)!.perform().catch((e: unknown) => e), "gone")).toBe(true);
  });

  it("is null for an event that is no task interaction", () => {
    expect(taskInteractionOf(event("TaskCreated", { id: "t1" }), fakeAdapter(null).adapter)).toBeNull();
  });
});

describe("withEngineRetries", () => {
  const noWait = async () => undefined;

  it("retries an unavailable engine up to four attempts in all, with growing pauses", async () => {
    const pauses: number[] = [];
    let attempts = 0;
    const err = await withEngineRetries(
      async () => {
        attempts++;
        throw new EngineError("unavailable", "down");
      },
      () => false,
      async (ms) => void pauses.push(ms),
    ).catch((e: unknown) => e);
    expect(isEngineError(err, "unavailable")).toBe(true);
    expect(attempts).toBe(4);
    expect(pauses).toEqual([500, 1000, 2000]);
  });

  it("answers once an attempt succeeds, and does not retry a refusal or while stopping", async () => {
    let attempts = 0;
    const result = await withEngineRetries(async () => (++attempts < 3 ? Promise.reject(new EngineError("retry", "again")) : "done"), () => false, noWait);
    expect([result, attempts]).toEqual(["done", 3]);
    attempts = 0;
    await withEngineRetries(async () => {
      attempts++;
      throw new EngineError("conflict", "claimed");
    }, () => false, noWait).catch(() => undefined);
    expect(attempts).toBe(1);
    attempts = 0;
    await withEngineRetries(async () => {
      attempts++;
      throw new EngineError("unavailable", "down");
    }, () => true, noWait).catch(() => undefined);
    expect(attempts).toBe(1);
  });
});
