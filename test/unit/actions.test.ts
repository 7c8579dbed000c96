// lib/actions.ts: a call by name is checked like a function call. The `@ts-expect-error` lines are the test that
// `npm run typecheck` runs: each must be an error, or the check fails; the runtime part checks what callAction sends.
import { describe, expect, it } from "vitest";
import { actionCallOf, callAction, type ActionCall, type ActionResult, type Caller } from "../../lib/actions.ts";
import type { CommandResult } from "../../domain/decider.ts";

/** A caller that records what it is asked and answers `answer`. */
function recorder(answer: unknown) {
  const calls: unknown[][] = [];
  const caller: Caller = { call: async (...args: unknown[]) => (calls.push(args), answer) };
  return { caller, calls };
}

describe("callAction", () => {
  it("passes the name, params and options through, and answers the action's result", async () => {
    const { caller, calls } = recorder({ globalPosition: 3, token: "t" });
    const head: ActionResult<"eventstore.head"> = await callAction(caller, "eventstore.head", {}, { timeout: 100 });
    expect(head.globalPosition).toBe(3);
    expect(calls).toEqual([["eventstore.head", {}, { timeout: 100 }]]);
    const call: ActionCall = actionCallOf(caller);
    await call("eventstore.tokenOf", { globalPosition: 1 });
    expect(calls[1]).toEqual(["eventstore.tokenOf", { globalPosition: 1 }, undefined]);
  });
});

// ---- what the compiler refuses (checked by `npm run typecheck`, never run) ----

async function refused(call: ActionCall) {
  // @ts-expect-error: no such action
  await call("eventstore.readEverything", {});
  // @ts-expect-error: a misspelt view query
  await call("view.taskForID", { id: "t1" });
  // @ts-expect-error: readStream needs its streamId
  await call("eventstore.readStream", { fromVersion: 1 });
  // @ts-expect-error: tokenOf takes a number
  await call("eventstore.tokenOf", { globalPosition: "1" });
  // @ts-expect-error: a claim names the assignee
  await call("task.claim", { id: "t1" });
  // @ts-expect-error: the command has no such field
  await call("task.assign", { id: "t1", assignee: "kermit", owner: "piggy" });
  // @ts-expect-error: a view query's user has groups
  await call("view.taskForId", { id: "t1", user: { username: "kermit" } });
  const head = await call("eventstore.head", {});
  // @ts-expect-error: the head has no such field
  void head.position;
  const result: CommandResult = await call("task.claim", { id: "t1", assignee: "kermit", commandId: "c1" });
  // @ts-expect-error: a command answers a CommandResult, not a page
  void result.elements;
}
void refused;
