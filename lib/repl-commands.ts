// Custom commands of the Moleculer REPL (`npm run repl`). Each one calls the platform's public actions, so it
// works the same on an embedded node and from a node that joined a cluster.
//
//   tasks <user>       what that user sees in the task list (groups from the user directory, USERS_FILE)
//   replay <view>      rebuilds the view from the event store and shows the progress until it is live
//   processors         the tracking processors: position, lag, status, owner
//   stats              event store head, view position, tasks per application, nodes
//
// Output goes to `helpers.print` when the caller passes one (the tests do, to read what was printed), else to
// the console, as moleculer-repl's own commands do. Tables are plain aligned text.
import type { ServiceBroker } from "moleculer";
import { Directory } from "./directory.ts";
import { sleep } from "./sleep.ts";
import { callAction } from "./actions.ts";

export interface ReplHelpers {
  /** Where the command writes its lines; console.log when absent. */
  print?: (line: string) => void;
  [key: string]: unknown;
}

export interface ReplArgs {
  options: Record<string, unknown>;
  [name: string]: unknown;
}

export interface ReplCommand {
  command: string;
  description: string;
  alias?: string | string[];
  options?: { option: string; description: string }[];
  action(broker: ServiceBroker, args: ReplArgs, helpers?: ReplHelpers): Promise<void>;
}

const printer = (helpers?: ReplHelpers) => helpers?.print ?? ((line: string) => console.log(line));


/** Columns padded to their widest cell, a rule under the header. */
export function formatTable(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((row) => headers.map((_, i) => (row[i] === null || row[i] === undefined || row[i] === "" ? "-" : String(row[i]))));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join("\n");
}

function positiveInteger(value: unknown, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

function errorText(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

const tasksCommand: ReplCommand = {
  command: "tasks <user>",
  description: "The tasks a user sees (groups from the user directory): id, name, assignee, due",
  options: [
    { option: "--size <n>", description: "How many tasks at most (default 50)" },
    { option: "--page <n>", description: "0-based page (default 0)" },
    { option: "--mine", description: "Only the tasks assigned to the user" },
  ],
  async action(broker, args, helpers) {
    const print = printer(helpers);
    const wanted = String(args.user ?? "");
    const directory = Directory.load();
    const user = directory.find(wanted);
    if (!user) {
      print(`Unknown user "${wanted}"; known: ${directory.users.map((u) => u.id).join(", ")}`);
      return;
    }
    const size = positiveInteger(args.options?.size, 50);
    const page = Math.max(0, Number(args.options?.page ?? 0) || 0);
    const result = await callAction(broker, "view.tasksForUser", {
      user: { username: user.username, groups: user.groups },
      assignedToMeOnly: args.options?.mine === true,
      page,
      size,
    });
    // Asked without a knownVersion, the view never answers "unchanged".
    if ("unchanged" in result) throw new Error(`view.tasksForUser answered "unchanged" to a version it was not given`);
    const groups = user.groups.length > 0 ? `groups ${user.groups.join(", ")}` : "no groups";
    print(`Tasks of ${user.username} (${groups}): ${result.totalElementCount} in total`);
    if (result.elements.length === 0) {
      print("(no tasks)");
      return;
    }
    print(formatTable(["ID", "NAME", "ASSIGNEE", "DUE"], result.elements.map((t) => [t.id, t.name, t.assignee, t.dueDate])));
    const from = page * size + 1;
    if (result.totalElementCount > result.elements.length) print(`Showing ${from}-${from + result.elements.length - 1} of ${result.totalElementCount}`);
  },
};

const replayCommand: ReplCommand = {
  command: "replay <view>",
  description: "Rebuild a view (e.g. `replay view`) from the event store; prints the progress until it is live",
  options: [{ option: "--interval <ms>", description: "How often to print the progress (default 1000)" }],
  async action(broker, args, helpers) {
    const print = printer(helpers);
    const service = String(args.view ?? "view");
    const interval = positiveInteger(args.options?.interval, 1000);
    // Any service that mixes the view's replay in may be named (the view by default); it answers as the view does.
    const [replay, replayStatus] = [`${service}.replay` as "view.replay", `${service}.replayStatus` as "view.replayStatus"];
    const started = await callAction(broker, replay, {});
    print(`Replay of ${service} into generation ${started.generation} started`);
    let last = "";
    for (;;) {
      const state = await callAction(broker, replayStatus, {});
      if (!state) {
        print(`${service} reports no replay`);
        return;
      }
      const progress = `${state.percent}% (position ${state.globalPosition} of ${state.headPosition}, ${state.eventsApplied} events, ${state.eventsPerSecond} events/s)`;
      if (progress !== last && state.status === "running") print(`  ${progress}`);
      last = progress;
      if (state.status === "done") {
        const seconds = state.finishedAt ? (Date.parse(state.finishedAt) - Date.parse(state.startedAt)) / 1000 : null;
        print(
          `Done: generation ${state.generation} of ${service} is live; ${state.eventsApplied} events replayed` +
            `${seconds !== null ? ` in ${seconds.toFixed(1)} s` : ""} (${state.eventsPerSecond} events/s)`,
        );
        return;
      }
      if (state.status === "failed") {
        print(`Failed: the replay into generation ${state.generation} stopped: ${state.error}`);
        return;
      }
      await sleep(interval);
    }
  },
};

const processorsCommand: ReplCommand = {
  command: "processors",
  description: "Tracking processors: name, position, lag, status, owner",
  async action(broker, _args, helpers) {
    const print = printer(helpers);
    const rows = await callAction(broker, "eventstore.processors", {});
    if (rows.length === 0) {
      print("No tracking processors registered");
      return;
    }
    print(formatTable(["NAME", "POSITION", "LAG", "STATUS", "OWNER"], rows.map((p) => [p.name, p.globalPosition, p.lag, p.status, p.owner])));
    for (const p of rows.filter((row) => row.lastError)) print(`${p.name}: last error: ${p.lastError}`);
  },
};

const statsCommand: ReplCommand = {
  command: "stats",
  description: "Event store head, view position, tasks per application, nodes",
  async action(broker, _args, helpers) {
    const print = printer(helpers);
    let head: { globalPosition: number; token: string } | null = null;
    try {
      head = await callAction(broker, "eventstore.head", {});
      print(`Event store head: position ${head.globalPosition} (token ${head.token})`);
    } catch (err) {
      print(`Event store head: unavailable (${errorText(err)})`);
    }
    try {
      const view = await callAction(broker, "view.position", {});
      const lag = head ? Math.max(0, head.globalPosition - view.globalPosition) : null;
      print(`View: position ${view.globalPosition}${lag !== null ? `, lag ${lag}` : ""} (generation ${view.generation}, ${view.store} store)`);
    } catch (err) {
      print(`View: unavailable (${errorText(err)})`);
    }
    try {
      const counts = await callAction(broker, "view.taskCountByApplication", {});
      const total = counts.reduce((sum, row) => sum + row.taskCount, 0);
      print(`Tasks: ${total} in ${counts.length} application${counts.length === 1 ? "" : "s"}`);
      if (counts.length > 0) print(formatTable(["APPLICATION", "TASKS"], counts.map((row) => [row.application, row.taskCount])));
    } catch (err) {
      print(`Tasks: unavailable (${errorText(err)})`);
    }
    const nodes = await callAction(broker, "$node.list", {});
    const online = nodes.filter((n) => n.available);
    const offline = nodes.filter((n) => !n.available);
    print(`Nodes: ${nodes.length} (${online.length} online, ${offline.length} offline)`);
    print(
      formatTable(
        ["NODE", "STATUS"],
        [...nodes].sort((a, b) => a.id.localeCompare(b.id)).map((n) => [`${n.id}${n.local ? " (this REPL)" : ""}`, n.available ? "online" : "offline"]),
      ),
    );
  },
};

export const replCommands: ReplCommand[] = [tasksCommand, replayCommand, processorsCommand, statsCommand];
