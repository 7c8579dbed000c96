// Start-up benchmark (npm run bench:startup): what `npm start` costs a new user, next to a bare PGlite measured in
// the same run (issue 11). Every measurement runs in child processes, REPEATS times (median printed):
//
//   a. bare PGlite: `new PGlite({ dataDir })` in a plain node process (no tsx, no Taskpool) until `waitReady`,
//      on an empty directory (initdb in WebAssembly) and on the database it created (open); the resident memory
//      (VmRSS of /proc/<pid>/status) of that process holding the open database after one `SELECT 1`;
//   b. the platform: what `npm start` execs (PLATFORM_ARGS: plain node, types stripped by Node, the compile cache of
//      lib/compile-cache.mjs) with a fresh DATA_DIR and spare PORT /
//      APP_PORT, from spawn until `GET /api/ready` answers 200 — first start on the empty data directory, then a
//      restart on the data it wrote (each start ends with SIGINT; exit code and stop time are printed too);
//   c. the idle platform's VmRSS 2 s after ready (first start and restart); then, once, its growth with
//      BENCH_STARTUP_TASKS tasks (default 20,000): the platform restarts on the same data with TRANSPORTER=<NATS>
//      and its own NAMESPACE, a client broker in this process sends `task.create` (the params an engine connector
//      sends, bench/lib.ts createTaskParams) over NATS, 32 at a time, and the RSS is read again once
//      `/api/ready` reports the view caught up (lag 0) and the process has idled for 5 s.
//
// Where the start-up time goes is read from the platform's own log timestamps (LOG_LEVEL=info): spawn → first log
// line (node, Moleculer and moleculer.config.ts imports), → broker built, → services imported and created, → event store
// open, → view store open, → "Taskpool node … started", → /api/ready 200.
//
// Environment: BENCH_STARTUP_REPEATS (default 3), BENCH_STARTUP_TASKS (default 20000; growth step), BENCH_NATS_URL
// (default: TEST_NATS_URL or `scripts/services.sh env`). DATABASE_URL, MONGO_URL, VIEW_STORE, TRANSPORTER and
// SERVICES of the calling shell are removed from the children's environment: they start the embedded platform.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ServiceBroker, type BrokerOptions } from "moleculer";
// Registers the aggregate commands' Shard strategy (task.create names it): a client broker without it does not know
// the platform's command actions ("Service 'task.create' is not found").
import "../lib/strategies.ts";
import { Cleanup, createTaskParams, envNumber, environmentLines, formatMs, formatTable, natsUrl, percentile, runId } from "./lib.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
process.chdir(repoRoot);

const repeats = Math.floor(envNumber("BENCH_STARTUP_REPEATS", 3));
const growthTasks = Math.floor(envNumber("BENCH_STARTUP_TASKS", 20_000));
const cleanup = new Cleanup();
const id = runId();

// ---------------------------------------------------------------------------------------------------------------
// Child processes

interface Line {
  /** ms since spawn, when this process read the line. */
  at: number;
  /** Epoch ms of the line's own [HH:MM:SS.mmmZ] stamp, when it has one. */
  stamped: number | null;
  text: string;
}

interface Child {
  process: ChildProcess;
  pid: number;
  /** Epoch ms at spawn. */
  spawnedAt: number;
  spawnedPerf: number;
  lines: Line[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atPerf: number }>;
  output(): string;
}

const STAMP = /^\[(\d\d):(\d\d):(\d\d)\.(\d\d\d)Z\]/;

function stampOf(text: string, near: number): number | null {
  const m = STAMP.exec(text);
  if (!m) return null;
  const day = new Date(near);
  const t = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
  // Around midnight the stamp may belong to the next or previous day.
  return t - near > 43_200_000 ? t - 86_400_000 : near - t > 43_200_000 ? t + 86_400_000 : t;
}

/** Children's environment: the calling shell's, without what would make them something else than `npm start`. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["DATABASE_URL", "VIEW_DATABASE_URL", "MONGO_URL", "VIEW_STORE", "TRANSPORTER", "SERVICES", "NODE_ID", "NAMESPACE", "METRICS_PORT", "ENGINE_URL", "NODE_OPTIONS"]) {
    delete env[name];
  }
  return { ...env, ...extra };
}

function startChild(args: string[], env: NodeJS.ProcessEnv): Child {
  const spawnedAt = Date.now();
  const spawnedPerf = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"], cwd: repoRoot });
  const lines: Line[] = [];
  let raw = "";
  const reader = (stream: NodeJS.ReadableStream) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      raw += chunk;
      const at = performance.now() - spawnedPerf;
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const text of parts) lines.push({ at, stamped: stampOf(text, spawnedAt), text });
    });
  };
  reader(child.stdout!);
  reader(child.stderr!);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atPerf: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, atPerf: performance.now() })),
  );
  const handle: Child = { process: child, pid: child.pid!, spawnedAt, spawnedPerf, lines, exited, output: () => raw };
  cleanup.add(`kill child ${child.pid}`, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  return handle;
}

async function waitForLine(child: Child, pattern: RegExp, timeoutMs: number): Promise<Line> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const line = child.lines.find((l) => pattern.test(l.text));
    if (line) return line;
    if (child.process.exitCode !== null || child.process.signalCode !== null) throw new Error(`child ${child.pid} exited before printing ${pattern}:\n${child.output().slice(-3000)}`);
    if (performance.now() > deadline) throw new Error(`child ${child.pid} did not print ${pattern} within ${timeoutMs} ms:\n${child.output().slice(-3000)}`);
    await sleep(5);
  }
}

/** Stops a child with `signal`; returns its exit code and how long it took (ms). Kills it after 20 s. */
async function stopChild(child: Child, signal: NodeJS.Signals = "SIGINT"): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill(signal);
  const timer = setTimeout(() => child.process.kill("SIGKILL"), 20_000);
  const { code, atPerf } = await child.exited;
  clearTimeout(timer);
  return { code, ms: atPerf - t0 };
}

/** Resident set size of a process in MB, from /proc/<pid>/status. */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function spare(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `taskpool-bench-${label}-`));
  cleanup.add(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------------------------
// a. bare PGlite

// Plain node, no tsx: what PGlite alone costs. Prints "ready" after waitReady, "rss" after SELECT 1, exits on SIGINT
// after closing the database.
const BARE_PGLITE = `
import { PGlite } from "@electric-sql/pglite";
const db = new PGlite({ dataDir: process.argv[1] });
await db.waitReady;
console.log("ready");
await db.query("SELECT 1");
console.log("queried");
process.on("SIGINT", async () => { await db.close(); process.exit(0); });
setInterval(() => {}, 1 << 30);
`;

interface BareRun {
  readyMs: number;
  rssMb: number;
}

async function barePGlite(dir: string): Promise<BareRun> {
  const child = startChild(["--input-type=module", "-e", BARE_PGLITE, dir], childEnv({}));
  const ready = await waitForLine(child, /^ready$/, 120_000);
  await waitForLine(child, /^queried$/, 30_000);
  await sleep(2000);
  const rss = rssMb(child.pid);
  const stopped = await stopChild(child);
  if (stopped.code !== 0) throw new Error(`bare PGlite exited with ${stopped.code}:\n${child.output()}`);
  return { readyMs: ready.at, rssMb: rss };
}

// ---------------------------------------------------------------------------------------------------------------
// b, c. the platform

interface PlatformRun {
  readyMs: number;
  rssMb: number;
  stopMs: number;
  exitCode: number | null;
  /** ms since spawn of each milestone in the log (NaN: not seen). */
  milestones: Record<string, number>;
}

const MILESTONES: { label: string; pattern: RegExp }[] = [
  { label: "first log line (node + moleculer + moleculer.config.ts imported)", pattern: /Moleculer v[\d.]+ is starting/ },
  { label: "broker built (middlewares registered)", pattern: /Registered \d+ middleware/ },
  { label: "services imported and created (first service log)", pattern: /API Gateway server created|Waiting for service/ },
  { label: "event store open (PGlite + migrations)", pattern: /Event store ready on/ },
  { label: "view store open", pattern: /View store:/ },
  { label: "\"Taskpool node … started\" (all services started)", pattern: /Taskpool node .* started/ },
];

/** Node's arguments of `npm start` (package.json), so that the bench measures what a user runs. */
const PLATFORM_ARGS: string[] = (() => {
  const script = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.start!;
  const match = /^(?:exec )?node (.+)$/.exec(script.trim());
  if (!match) throw new Error(`npm start is not "node …": ${script}`);
  return match[1]!.split(/\s+/);
})();

async function waitReady(port: number, child: Child, timeoutMs: number, predicate: (body: any) => boolean = () => true): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) throw new Error(`platform ${child.pid} exited before ready:\n${child.output().slice(-4000)}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/ready`, { signal: AbortSignal.timeout(2000) });
      const body = await response.json();
      if (response.status === 200 && predicate(body)) return performance.now() - child.spawnedPerf;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`platform ${child.pid} not ready within ${timeoutMs} ms:\n${child.output().slice(-4000)}`);
    await sleep(20);
  }
}

async function platformEnv(dataDir: string, extra: Record<string, string> = {}): Promise<{ env: NodeJS.ProcessEnv; port: number }> {
  const port = await spare();
  const appPort = await spare();
  return { env: childEnv({ DATA_DIR: dataDir, PORT: String(port), APP_PORT: String(appPort), LOG_LEVEL: "info", ...extra }), port };
}

function milestonesOf(child: Child): Record<string, number> {
  const result: Record<string, number> = {};
  for (const { label, pattern } of MILESTONES) {
    const line = child.lines.find((l) => pattern.test(l.text));
    result[label] = line ? (line.stamped ?? Number.NaN) - child.spawnedAt : Number.NaN;
  }
  return result;
}

async function platformStart(dataDir: string): Promise<PlatformRun> {
  const { env, port } = await platformEnv(dataDir);
  const child = startChild(PLATFORM_ARGS, env);
  const readyMs = await waitReady(port, child, 180_000);
  const milestones = milestonesOf(child);
  await sleep(2000);
  const rss = rssMb(child.pid);
  const stopped = await stopChild(child);
  if (stopped.code !== 0) console.error(`  platform ${child.pid} exited with code ${stopped.code} after SIGINT`);
  return { readyMs, rssMb: rss, stopMs: stopped.ms, exitCode: stopped.code, milestones };
}

interface Growth {
  idleRssMb: number;
  loadedRssMb: number;
  sendSeconds: number;
  catchUpSeconds: number;
  tasks: number;
  eventStorePosition: number;
  exitCode: number | null;
}

async function growth(dataDir: string): Promise<Growth> {
  const nats = natsUrl();
  const namespace = `bench-startup-${id}`;
  const { env, port } = await platformEnv(dataDir, { TRANSPORTER: nats, NAMESPACE: namespace, NODE_ID: `bench-startup-platform-${id}` });
  const child = startChild(PLATFORM_ARGS, env);
  await waitReady(port, child, 180_000);
  await sleep(5000);
  const idleRssMb = rssMb(child.pid);
  const client = new ServiceBroker({
    namespace,
    nodeID: `bench-startup-client-${id}`,
    transporter: nats as BrokerOptions["transporter"],
    serializer: "JSON",
    logger: false,
    requestTimeout: 60_000,
    skipProcessEventRegistration: true,
  });
  await client.start();
  cleanup.add("stop the client broker", () => client.stop());
  try {
    await client.waitForServices(["task"], 60_000);
    const t0 = performance.now();
    let next = 0;
    let lastReport = performance.now();
    const worker = async () => {
      while (next < growthTasks) {
        const seq = next++;
        await client.call("task.create", createTaskParams(`startup-${id}-${seq}`));
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          console.error(`  growth: ${next.toLocaleString("en-US")} / ${growthTasks.toLocaleString("en-US")} task.create sent`);
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const sendSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    let body: { eventStorePosition: number; lag: number } = { eventStorePosition: 0, lag: -1 };
    await waitReady(port, child, 600_000, (b) => {
      body = b;
      return b.lag === 0 && b.viewPosition === b.eventStorePosition;
    });
    const catchUpSeconds = (performance.now() - t1) / 1000;
    await sleep(5000);
    const loadedRssMb = rssMb(child.pid);
    await client.stop();
    const stopped = await stopChild(child);
    return { idleRssMb, loadedRssMb, sendSeconds, catchUpSeconds, tasks: growthTasks, eventStorePosition: body.eventStorePosition, exitCode: stopped.code };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------

function median(values: number[]): number {
  return percentile(values.slice().sort((a, b) => a - b), 0.5);
}

function seconds(ms: number): string {
  return Number.isFinite(ms) ? (ms / 1000).toFixed(2) : "-";
}

function times(a: number, b: number): string {
  return Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : "-";
}

function mb(value: number): string {
  return Number.isFinite(value) ? value.toFixed(0) : "-";
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const header = [
    `Start-up benchmark: \`npm start\` (node ${PLATFORM_ARGS.join(" ")}) next to a bare PGlite, child processes, same run`,
    ...environmentLines({
      runs: `${repeats} of each measurement (median printed), in the order: bare create, bare open, first start, restart`,
      platform: "server.ts without SERVICES (the embedded platform), fresh DATA_DIR per run, LOG_LEVEL=info, spare PORT/APP_PORT",
      "bare PGlite": "node --input-type=module (no tsx): new PGlite({dataDir}) until waitReady; RSS after SELECT 1 and 2 s",
      RSS: "VmRSS of /proc/<pid>/status, 2 s after ready",
    }),
  ].join("\n");
  console.error(header);

  const bareCreate: BareRun[] = [];
  const bareOpen: BareRun[] = [];
  const first: PlatformRun[] = [];
  const restart: PlatformRun[] = [];
  let lastDataDir = "";
  for (let run = 1; run <= repeats; run++) {
    const bareDir = join(tempDir("bare"), "pgdata");
    bareCreate.push(await barePGlite(bareDir));
    bareOpen.push(await barePGlite(bareDir));
    const dataDir = join(tempDir("data"), "data");
    first.push(await platformStart(dataDir));
    restart.push(await platformStart(dataDir));
    lastDataDir = dataDir;
    const f = first[first.length - 1]!;
    const r = restart[restart.length - 1]!;
    console.error(
      `  run ${run}: bare create ${seconds(bareCreate[run - 1]!.readyMs)} s (${mb(bareCreate[run - 1]!.rssMb)} MB), bare open ${seconds(bareOpen[run - 1]!.readyMs)} s (${mb(bareOpen[run - 1]!.rssMb)} MB); ` +
        `first start ${seconds(f.readyMs)} s (${mb(f.rssMb)} MB, exit ${f.exitCode} in ${formatMs(f.stopMs)} ms), restart ${seconds(r.readyMs)} s (${mb(r.rssMb)} MB, exit ${r.exitCode} in ${formatMs(r.stopMs)} ms)`,
    );
  }

  console.error(`Growth: restarting on ${lastDataDir} with TRANSPORTER (NATS) and sending ${growthTasks.toLocaleString("en-US")} task.create`);
  let grown: Growth | null = null;
  let growthError: string | null = null;
  try {
    grown = await growth(lastDataDir);
  } catch (err) {
    growthError = (err as Error).message.split("\n")[0]!;
    console.error(`  growth failed: ${(err as Error).message}`);
  }

  const m = (runs: { readyMs: number }[]) => median(runs.map((r) => r.readyMs));
  const r = (runs: { rssMb: number }[]) => median(runs.map((x) => x.rssMb));
  const rows: (string[] | null)[] = [
    ["bare PGlite: create a database in an empty directory", `${seconds(m(bareCreate))} s`, "", "", ""],
    ["bare PGlite: open the existing database", `${seconds(m(bareOpen))} s`, "", "", ""],
    ["bare PGlite process holding one open database (after create)", `${mb(r(bareCreate))} MB`, "", "", ""],
    ["bare PGlite process holding one open database (after open)", `${mb(r(bareOpen))} MB`, "", "", ""],
    null,
    ["first start on an empty DATA_DIR until /api/ready 200", `${seconds(m(first))} s`, "÷ bare create", times(m(first), m(bareCreate)), "≤ 2×"],
    ["restart on existing data until /api/ready 200", `${seconds(m(restart))} s`, "÷ bare open", times(m(restart), m(bareOpen)), "≤ 3×"],
    ["idle platform RSS after first start", `${mb(r(first))} MB`, "÷ bare (create)", times(r(first), r(bareCreate)), "≤ 1.3×"],
    ["idle platform RSS after restart", `${mb(r(restart))} MB`, "÷ bare (open)", times(r(restart), r(bareOpen)), "≤ 1.3×"],
  ];
  if (grown) {
    rows.push(
      null,
      ["idle platform RSS, restarted with TRANSPORTER=NATS", `${mb(grown.idleRssMb)} MB`, "÷ bare (open)", times(grown.idleRssMb, r(bareOpen)), ""],
      [`… after ${grown.tasks.toLocaleString("en-US")} task.create over NATS, view caught up`, `${mb(grown.loadedRssMb)} MB`, "÷ bare (open)", times(grown.loadedRssMb, r(bareOpen)), "≤ 1.3×"],
      [`RSS growth with ${grown.tasks.toLocaleString("en-US")} tasks`, `+${mb(grown.loadedRssMb - grown.idleRssMb)} MB`, "per 1,000 tasks", `${((grown.loadedRssMb - grown.idleRssMb) / (grown.tasks / 1000)).toFixed(1)} MB`, ""],
    );
  }
  const table = formatTable(
    [{ header: "measurement (median of " + repeats + ")" }, { header: "value", align: "right" }, { header: "ratio to", align: "left" }, { header: "ratio", align: "right" }, { header: "target", align: "left" }],
    rows,
  );

  // Where the time goes: median offsets since spawn of each log milestone, then ready.
  const timeline = (runs: PlatformRun[]) => {
    const labels = MILESTONES.map((x) => x.label);
    const offsets = labels.map((label) => median(runs.map((run) => run.milestones[label]!).filter(Number.isFinite)));
    offsets.push(m(runs));
    labels.push("GET /api/ready answers 200");
    let previous = 0;
    return labels.map((label, i) => {
      const at = offsets[i]!;
      const step = Number.isFinite(at) ? at - previous : Number.NaN;
      if (Number.isFinite(at)) previous = at;
      return [label, seconds(at), seconds(step)];
    });
  };
  const timelineTable = (title: string, runs: PlatformRun[]) =>
    `${title}\n` + formatTable([{ header: "milestone (log timestamp; medians)" }, { header: "at s", align: "right" }, { header: "step s", align: "right" }], timeline(runs));

  const took = (performance.now() - startedAt) / 1000;
  console.log(`\n${header}\n`);
  console.log(table);
  console.log(
    "\nEach start ended with SIGINT: exit codes " +
      [...first, ...restart].map((x) => String(x.exitCode)).join(", ") +
      `; stop took ${formatMs(median([...first, ...restart].map((x) => x.stopMs)))} ms (median).`,
  );
  if (grown) {
    console.log(
      `Growth run: ${grown.tasks.toLocaleString("en-US")} task.create sent in ${grown.sendSeconds.toFixed(1)} s (${Math.round(grown.tasks / grown.sendSeconds)}/s, 32 at a time over NATS), ` +
        `view caught up ${grown.catchUpSeconds.toFixed(1)} s later at event-store position ${grown.eventStorePosition.toLocaleString("en-US")}; exit code ${grown.exitCode}.`,
    );
  } else {
    console.log(`Growth run failed: ${growthError}`);
  }
  console.log(`\n${timelineTable("Where the first start goes:", first)}`);
  console.log(`\n${timelineTable("Where the restart goes:", restart)}`);
  console.log(`\nMeasured in ${took.toFixed(0)} s.`);
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}
