// The REPL's custom commands (lib/repl-commands.ts) without a terminal: a broker with the event store (PGlite in
// memory), task and view services in this process, each command's action called as moleculer-repl calls it,
// and what it printed read back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import EventStoreService from "../../services/eventstore.service.ts";
import TaskService from "../../services/task.service.ts";
import ViewService from "../../services/view.service.ts";
import { replCommands, type ReplCommand } from "../../lib/repl-commands.ts";
import { call, startBroker, waitFor } from "../helpers.ts";

function command(name: string): ReplCommand {
  const found = replCommands.find((c) => c.command === name || c.command.startsWith(`${name} `));
  if (!found) throw new Error(`No REPL command "${name}"`);
  return found;
}

/** Runs a command as the REPL would (args: the named arguments plus options) and returns what it printed. */
async function run(broker: ServiceBroker, name: string, args: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<string> {
  const lines: string[] = [];
  await command(name).action(broker, { options, ...args }, { print: (line: string) => lines.push(line) });
  return lines.join("\n");
}

const ref = (applicationName: string, instanceId: string) => ({
  type: "process",
  instanceId,
  executionId: instanceId,
  definitionId: `${applicationName}:1`,
  definitionKey: applicationName,
  name: applicationName,
  applicationName,
});

describe("REPL commands", () => {
  let broker: ServiceBroker;
  let last = 0;

  beforeAll(async () => {
    broker = await startBroker([{ ...EventStoreService, settings: { ...EventStoreService.settings, pgliteDir: "memory" } }, TaskService, { ...ViewService, settings: { store: "postgres", pgliteDir: "memory" } }]);
    const tasks = [
      { id: "repl-1", app: "approval", name: "Approve order 1", groups: ["muppetshow"], assignee: null, due: "2026-12-01T10:00:00Z" },
      { id: "repl-2", app: "approval", name: "Approve order 2", groups: ["muppetshow"], assignee: "kermit", due: null },
      { id: "repl-3", app: "invoice", name: "Check invoice 3", groups: ["avengers"], assignee: null, due: null },
    ];
    for (const t of tasks) {
      const result = await call(broker, "task.create", {
        id: t.id,
        sourceReference: ref(t.app, `pi-${t.id}`),
        taskDefinitionKey: "step",
        name: t.name,
        candidateGroups: t.groups,
        assignee: t.assignee,
        dueDate: t.due,
      });
      last = Math.max(last, result.globalPosition);
    }
    // The view has applied everything, and its processor row says so.
    await call(broker, "view.allTasks", { minPosition: last });
    await waitFor(async () => {
      const rows = await call<any[]>(broker, "eventstore.processors");
      return rows.some((r) => r.name === "view" && r.globalPosition >= last && r.lag === 0);
    }, 15_000, 100);
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it("registers the four commands in moleculer-repl's format", () => {
    expect(replCommands.map((c) => c.command)).toEqual(["tasks <user>", "replay <view>", "processors", "stats"]);
    for (const c of replCommands) {
      expect(typeof c.description).toBe("string");
      expect(typeof c.action).toBe("function");
    }
  });

  it("tasks <user>: what the user sees, with the groups from the user directory", async () => {
    const kermit = await run(broker, "tasks", { user: "kermit" });
    expect(kermit).toContain("Tasks of kermit (groups muppetshow): 2 in total");
    const lines = kermit.split("\n");
    expect(lines[1]).toMatch(/^ID\s+NAME\s+ASSIGNEE\s+DUE$/);
    expect(lines.find((l) => l.startsWith("repl-1"))).toMatch(/^repl-1\s+Approve order 1\s+-\s+2026-12-01T10:00:00\.000Z$/);
    expect(lines.find((l) => l.startsWith("repl-2"))).toMatch(/^repl-2\s+Approve order 2\s+kermit\s+-$/);
    expect(kermit).not.toContain("repl-3");

    const ironman = await run(broker, "tasks", { user: "ironman" });
    expect(ironman).toContain("Tasks of ironman (groups avengers): 1 in total");
    expect(ironman).toMatch(/^repl-3\s+Check invoice 3\s+-\s+-$/m);

    const mine = await run(broker, "tasks", { user: "kermit" }, { mine: true });
    expect(mine).toContain("1 in total");
    expect(mine).toContain("repl-2");

    const paged = await run(broker, "tasks", { user: "kermit" }, { size: "1" });
    expect(paged).toContain("Showing 1-1 of 2");

    expect(await run(broker, "tasks", { user: "nobody" })).toBe('Unknown user "nobody"; known: ironman, hulk, piggy, kermit, gonzo, fozzy');
  });

  it("processors: the view's position, lag, status and owner", async () => {
    const out = await run(broker, "processors");
    const [header, , ...rows] = out.split("\n");
    expect(header).toMatch(/^NAME\s+POSITION\s+LAG\s+STATUS\s+OWNER$/);
    const view = rows.find((r) => r.startsWith("view "));
    expect(view).toBeDefined();
    const [name, position, lag, status, owner] = view!.split(/\s+/);
    expect(name).toBe("view");
    expect(Number(position)).toBeGreaterThanOrEqual(last);
    expect(lag).toBe("0");
    expect(status).not.toBe("failed");
    expect(owner).toContain(`${broker.nodeID}/view/`);
  });

  it("stats: head, view position, tasks per application, nodes", async () => {
    const out = await run(broker, "stats");
    const head = (await call<{ globalPosition: number }>(broker, "eventstore.head")).globalPosition;
    expect(out).toContain(`Event store head: position ${head}`);
    expect(out).toMatch(new RegExp(`^View: position ${head}, lag 0 \\(generation \\d+, postgres store\\)$`, "m"));
    expect(out).toContain("Tasks: 3 in 2 applications");
    expect(out).toMatch(/^approval\s+2$/m);
    expect(out).toMatch(/^invoice\s+1$/m);
    expect(out).toContain("Nodes: 1 (1 online, 0 offline)");
    expect(out).toMatch(new RegExp(`^${broker.nodeID} \\(this REPL\\)\\s+online$`, "m"));
  });

  it("replay view: starts the replay, prints its progress and ends when the new generation is live", async () => {
    const before = await call<{ generation: number }>(broker, "view.position");
    const out = await run(broker, "replay", { view: "view" }, { interval: "50" });
    expect(out).toContain(`Replay of view into generation ${before.generation + 1} started`);
    expect(out).toMatch(new RegExp(`^Done: generation ${before.generation + 1} of view is live; \\d+ events replayed in [\\d.]+ s`, "m"));
    const after = await call<{ generation: number }>(broker, "view.position");
    expect(after.generation).toBe(before.generation + 1);
    // The rebuilt view answers as before.
    const kermit = await run(broker, "tasks", { user: "kermit" });
    expect(kermit).toContain("2 in total");
  });
});
