// The REST task list's answers apart from the gateway (gateway/task-list.ts, gateway/readiness.ts): interactions
// with ?wait=true, list answers kept per view version, start requests, readiness.
import { describe, expect, it } from "vitest";
import { AnswerCache } from "../../../gateway/answer-cache.ts";
import type { ActionCall } from "../../../lib/actions.ts";
import { interact, interaction, listAnswer, processStart, startProcess } from "../../../gateway/task-list.ts";
import { readiness } from "../../../gateway/readiness.ts";

const alice = { username: "alice", groups: ["sales"] };

/** A fake broker: each action answers from its function; every call is recorded. */
function fakeCall(actions: Record<string, (params: Record<string, unknown>) => unknown>) {
  const calls: { action: string; params: Record<string, unknown> }[] = [];
  // The fake answers whatever each test gives it: shapes of the map's results only as far as the test reads them.
  const call = (async (action: string, params: unknown) => {
    calls.push({ action, params: params as Record<string, unknown> });
    const answer = actions[action];
    if (!answer) throw new Error(`unexpected call ${action}`);
    return answer(params as Record<string, unknown>);
  }) as unknown as ActionCall;
  return { call, calls };
}

describe("interact", () => {
  it("answers 404 for a task the user may not see, and sends no command", async () => {
    const { call, calls } = fakeCall({ "view.taskForId": () => null });
    await expect(interact(call, alice, "t1", interaction("claim", alice, undefined), { wait: false, timeoutMs: 100 })).rejects.toMatchObject({ code: 404 });
    expect(calls.map((c) => c.action)).toEqual(["view.taskForId"]);
  });

  it("sends the command with a fresh commandId and answers 204 at once without wait", async () => {
    const { call, calls } = fakeCall({ "view.taskForId": () => ({ id: "t1" }), "task.claim": () => ({ globalPosition: 5 }) });
    expect(await interact(call, alice, "t1", interaction("claim", alice, undefined), { wait: false, timeoutMs: 100 })).toEqual({ status: 204, body: null });
    const command = calls[1]!;
    expect(command).toMatchObject({ action: "task.claim", params: { id: "t1", assignee: "alice" } });
    expect(command.params.commandId).toMatch(/^api:[0-9a-f-]{36}$/);
  });

  it("with wait, answers 204 once the view shows the effect, asking first at the command's position", async () => {
    let asked = 0;
    const { call, calls } = fakeCall({
      "view.taskForId": (p) => (p.user ? { id: "t1" } : ++asked < 3 ? { id: "t1", assignee: null } : { id: "t1", assignee: "alice" }),
      "task.claim": () => ({ globalPosition: 42 }),
    });
    expect(await interact(call, alice, "t1", interaction("claim", alice, undefined), { wait: true, timeoutMs: 5000, pollMs: 1 })).toEqual({ status: 204, body: null });
    const waits = calls.filter((c) => c.action === "view.taskForId" && !c.params.user);
    expect(waits.map((c) => c.params.minPosition)).toEqual([42, 0, 0]);
  });

  it("with wait, answers 202 when the effect is not visible within the bound", async () => {
    const { call } = fakeCall({ "view.taskForId": () => ({ id: "t1", followUpDate: null }), "task.defer": () => ({ globalPosition: 1 }) });
    const answer = await interact(call, alice, "t1", interaction("defer", alice, "2030-01-01T00:00:00.000Z"), { wait: true, timeoutMs: 30, pollMs: 5 });
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ status: "ACCEPTED" });
  });

  it("knows each interaction's command and effect", () => {
    const complete = interaction("complete", alice, { approved: true });
    expect(complete).toMatchObject({ action: "task.requestCompletion", params: { payload: { approved: true }, assignee: "alice" } });
    expect(complete.effectShown(null)).toBe(true);
    expect((interaction("complete", alice, undefined).params as any).payload).toEqual({});
    const unclaim = interaction("unclaim", alice, undefined);
    expect(unclaim.effectShown({ assignee: null } as any)).toBe(true);
    expect(unclaim.effectShown(null)).toBe(false);
    expect(interaction("undefer", alice, undefined).effectShown({ followUpDate: "x" } as any)).toBe(false);
  });
});

describe("listAnswer", () => {
  const render = (elements: any[]) => elements.map((e) => ({ n: e.n * 2 }));

  it("without a cache, renders the page, serialised to the bytes sent, and says its total", async () => {
    const { call } = fakeCall({ "view.dataEntriesForUser": () => ({ elements: [{ n: 1 }], totalElementCount: 7, version: "v1" }) });
    expect(await listAnswer(call, new AnswerCache(0), "view.dataEntriesForUser", { user: alice, page: 0 }, render)).toEqual({ body: Buffer.from('[{"n":2}]'), headers: { "X-ElementCount": "7" }, type: "application/json; charset=utf-8" });
  });

  it("with a cache, sends the kept body while the view confirms its version", async () => {
    let version = "v1";
    const { call, calls } = fakeCall({
      "view.dataEntriesForUser": (p) => (p.knownVersion === version ? { unchanged: true, version } : { elements: [{ n: version === "v1" ? 1 : 2 }], totalElementCount: 1, version }),
    });
    const answers = new AnswerCache(1_000_000);
    const first = await listAnswer(call, answers, "view.dataEntriesForUser", { user: alice, page: 0 }, render);
    expect(first).toEqual({ body: Buffer.from('[{"n":2}]'), headers: { "X-ElementCount": "1" }, type: "application/json; charset=utf-8" });
    expect(await listAnswer(call, answers, "view.dataEntriesForUser", { user: alice, page: 0 }, render)).toEqual(first);
    expect(calls.map((c) => c.params.knownVersion)).toEqual(["", "v1"]);
    version = "v2";
    expect((await listAnswer(call, answers, "view.dataEntriesForUser", { user: alice, page: 0 }, render)).body.toString()).toBe('[{"n":4}]');
  });

  it("says when the total is the view's count cap (X-ElementCount-Capped), kept or not", async () => {
    const { call } = fakeCall({ "view.dataEntriesForUser": () => ({ elements: [{ n: 1 }], totalElementCount: 10, totalElementCountCapped: true, version: "v1" }) });
    const headers = { "X-ElementCount": "10", "X-ElementCount-Capped": "true" };
    expect((await listAnswer(call, new AnswerCache(0), "view.dataEntriesForUser", { user: alice, page: 0 }, render)).headers).toEqual(headers);
    const answers = new AnswerCache(1_000_000);
    expect((await listAnswer(call, answers, "view.dataEntriesForUser", { user: alice, page: 0 }, render)).headers).toEqual(headers);
  });

  it("refuses an 'unchanged' to a version it did not give", async () => {
    const { call } = fakeCall({ "view.dataEntriesForUser": () => ({ unchanged: true, version: "v1" }) });
    await expect(listAnswer(call, new AnswerCache(1000), "view.dataEntriesForUser", { user: alice }, render)).rejects.toThrow(/unchanged/);
  });
});

describe("process starts", () => {
  const defs = [{ processDefinitionId: "app:order:1", processDefinitionKey: "order", applicationName: "app" }];

  it("requests the start of a startable process and says where to follow it", async () => {
    const { call, calls } = fakeCall({ "view.processDefinitionsStartableByUser": () => defs, "processDefinition.requestStart": () => ({ globalPosition: 3 }) });
    const started = await startProcess(call, alice, { applicationName: "app", processDefinitionKey: "order" }, { businessKey: "b1" });
    expect(started.status).toBe(`/api/process-starts/app%3Aorder%3A1/${started.requestId}`);
    expect(calls[1]!.params).toMatchObject({ processDefinitionId: "app:order:1", businessKey: "b1", variables: {}, requestedBy: "alice", commandId: `start:${started.requestId}` });
  });

  it("answers 404 for a process the user may not start", async () => {
    const { call } = fakeCall({ "view.processDefinitionsStartableByUser": () => defs });
    await expect(startProcess(call, alice, { applicationName: "app", processDefinitionKey: "other" }, undefined)).rejects.toMatchObject({ code: 404 });
  });

  it("shows a start request to its requester only", async () => {
    const { call } = fakeCall({ "processDefinition.startRequest": () => ({ requestedBy: "bob", status: "REQUESTED" }) });
    await expect(processStart(call, alice, "app:order:1", "r1")).rejects.toMatchObject({ code: 404 });
    expect(await processStart(call, { username: "bob", groups: [] }, "app:order:1", "r1")).toEqual({ requestId: "r1", requestedBy: "bob", status: "REQUESTED" });
  });
});

describe("readiness", () => {
  it("is ready when the view has caught up", async () => {
    const { call } = fakeCall({ "eventstore.head": () => ({ globalPosition: 9, token: "1:9" }), "view.position": () => ({ globalPosition: 9, token: "1:9" }) });
    expect(await readiness(call, 10)).toEqual({ status: "READY", eventStorePosition: 9, viewPosition: 9, lag: 0, reasons: [] });
  });

  it("counts the lag after the view's token, and is not ready beyond the bound", async () => {
    const { call, calls } = fakeCall({
      "eventstore.head": () => ({ globalPosition: 50, token: "2:50" }),
      "view.position": () => ({ globalPosition: 60, token: "1:60" }),
      "eventstore.countAfter": () => ({ count: 11 }),
    });
    const ready = await readiness(call, 10, ["waiting for MongoDB: down"]);
    expect(ready).toMatchObject({ status: "NOT_READY", lag: 11, reasons: ["waiting for MongoDB: down", "view is more than 10 events behind the event store"] });
    expect(calls.at(-1)!.params).toEqual({ token: "1:60", cap: 11 });
  });

  it("gives every unreachable part as a reason", async () => {
    const { call } = fakeCall({});
    const ready = await readiness(call, 10);
    expect(ready.status).toBe("NOT_READY");
    expect(ready.reasons).toEqual(["event store unreachable: unexpected call eventstore.head", "view unreachable: unexpected call view.position"]);
  });
});
