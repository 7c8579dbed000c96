// Shared plumbing of the benchmarks (bench/*.bench.ts): a fixed-duration load loop at a given concurrency with
// latency percentiles, aligned tables, the servers' addresses, throw-away databases, cleanup on exit, and the
// TaskCreated payload both benchmarks write. Benchmarks print figures; they assert nothing about timing.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { taskDecider, type CreateTask } from "../domain/task.ts";
import { sourceReference } from "../test/fixtures/command-mix.ts";

// ---------------------------------------------------------------------------------------------------------------
// Configuration

/** A positive number from the environment, or `fallback`. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** Concurrency levels: BENCH_CONCURRENCY="1,16,64" by default. */
export function concurrencyLevels(): number[] {
  const raw = process.env.BENCH_CONCURRENCY ?? "1,16,64";
  const levels = raw.split(",").map((s) => Number(s.trim()));
  if (levels.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_CONCURRENCY must list positive integers, got "${raw}"`);
  return levels;
}

let servicesEnv: Record<string, string> | null = null;

/** TEST_* addresses printed by `bash scripts/services.sh env` (the same source the tests use). */
function fromServicesScript(name: string): string | undefined {
  if (servicesEnv === null) {
    servicesEnv = {};
    try {
      const out = execFileSync("bash", ["scripts/services.sh", "env"], { encoding: "utf8" });
      for (const line of out.split("\n")) {
        const match = /^export (\w+)=(.*)$/.exec(line.trim());
        if (match) servicesEnv[match[1]!] = match[2]!.replace(/^["']|["']$/g, "");
      }
    } catch {
      // no script output: the caller reports the missing address
    }
  }
  return servicesEnv[name];
}

/** PostgreSQL of the benchmarks: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else scripts/services.sh env. */
export function databaseUrl(): string {
  const url = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? fromServicesScript("TEST_DATABASE_URL");
  if (!url) throw new Error("No PostgreSQL address: set BENCH_DATABASE_URL or run `bash scripts/services.sh up`");
  return url;
}

/** NATS of the benchmarks: BENCH_NATS_URL, else TEST_NATS_URL, else scripts/services.sh env. */
export function natsUrl(): string {
  const url = process.env.BENCH_NATS_URL ?? process.env.TEST_NATS_URL ?? fromServicesScript("TEST_NATS_URL");
  if (!url) throw new Error("No NATS address: set BENCH_NATS_URL or run `bash scripts/services.sh up`");
  return url;
}

/** The same server address with another database name. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

// ---------------------------------------------------------------------------------------------------------------
// Load loop

export interface LoadOptions {
  concurrency: number;
  /** Measured duration. */
  seconds: number;
  /** Unmeasured run of the same loop just before. */
  warmupSeconds: number;
  /** One operation; `seq` is unique over the whole run (warm-up included). */
  op(seq: number, worker: number): Promise<unknown>;
  /** Errors tolerated before the run is abandoned (default 50). */
  maxErrors?: number;
}

export interface LoadResult {
  concurrency: number;
  ops: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** The value below which `p` (0..1) of the sorted samples lie (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

let sequence = 0;

async function loadPhase(options: LoadOptions, seconds: number): Promise<{ latencies: Float64Array; errors: number; elapsed: number }> {
  const maxErrors = options.maxErrors ?? 50;
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let errors = 0;
  let firstError: unknown = null;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async (index: number) => {
    while (performance.now() < deadline && errors <= maxErrors) {
      const t0 = performance.now();
      try {
        await options.op(sequence++, index);
      } catch (err) {
        errors += 1;
        firstError ??= err;
        continue;
      }
      const took = performance.now() - t0;
      if (count === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[count++] = took;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
  const elapsed = (performance.now() - start) / 1000;
  if (errors > maxErrors) {
    throw new Error(`Abandoned after ${errors} errors; the first: ${(firstError as Error)?.stack ?? String(firstError)}`);
  }
  if (firstError) console.error(`  (${errors} errors; the first: ${(firstError as Error)?.message ?? String(firstError)})`);
  return { latencies: latencies.subarray(0, count), errors, elapsed };
}

/** Runs `op` from `concurrency` workers for a warm-up and then for `seconds`, measuring the second run only. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.warmupSeconds > 0) await loadPhase(options, options.warmupSeconds);
  const { latencies, errors, elapsed } = await loadPhase(options, options.seconds);
  const sorted = latencies.slice().sort();
  return {
    concurrency: options.concurrency,
    ops: sorted.length,
    errors,
    seconds: elapsed,
    perSecond: sorted.length / elapsed,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** One line per finished measurement on stderr, so that a long run shows progress while stdout keeps the tables. */
export function progress(label: string, result: LoadResult): void {
  console.error(
    `  ${label.padEnd(44)} c=${String(result.concurrency).padStart(3)}  ${formatRate(result.perSecond).padStart(8)}/s  ` +
      `p50 ${formatMs(result.p50Ms)} ms  p99 ${formatMs(result.p99Ms)} ms${result.errors ? `  errors ${result.errors}` : ""}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

export function formatRate(value: number): string {
  if (!Number.isFinite(value)) return "-";
  return Math.round(value).toLocaleString("en-US");
}

export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return "-";
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** a ÷ b as "0.62×". */
export function formatRatio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "-";
  return `${(a / b).toFixed(2)}×`;
}

export interface Column {
  header: string;
  /** Numbers read best right-aligned. */
  align?: "left" | "right";
}

/** An aligned plain-text table; a row of `null` prints a separator. */
export function formatTable(columns: Column[], rows: (string[] | null)[]): string {
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows.map((row) => (row ? row[i]!.length : 0))));
  const cell = (text: string, i: number) => (columns[i]!.align === "right" ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const line = (cells: string[]) => cells.map(cell).join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(columns.map((c) => c.header)), rule, ...rows.map((row) => (row ? line(row) : rule))].join("\n");
}

/**
 * Load results per concurrency level: one row per subject, the first subject being the one compared (Taskpool's),
 * and the last column its rate divided by each other row's.
 */
export function comparisonTable<S extends string>(options: {
  levels: number[];
  subjects: S[];
  labels: Record<S, string>;
  result: (subject: S, concurrency: number) => LoadResult | undefined;
  subjectHeader: string;
  rateHeader: string;
  ratioHeader: string;
}): string {
  const [compared] = options.subjects;
  const rows: (string[] | null)[] = [];
  for (const concurrency of options.levels) {
    if (rows.length > 0) rows.push(null);
    const reference = options.result(compared!, concurrency);
    for (const subject of options.subjects) {
      const r = options.result(subject, concurrency);
      if (!r) continue;
      rows.push([
        String(concurrency),
        options.labels[subject],
        formatRate(r.perSecond),
        formatMs(r.p50Ms),
        formatMs(r.p99Ms),
        String(r.errors),
        subject === compared ? "" : formatRatio(reference?.perSecond ?? NaN, r.perSecond),
      ]);
    }
  }
  return formatTable(
    [
      { header: "conc", align: "right" },
      { header: options.subjectHeader },
      { header: options.rateHeader, align: "right" },
      { header: "p50 ms", align: "right" },
      { header: "p99 ms", align: "right" },
      { header: "errors", align: "right" },
      { header: options.ratioHeader, align: "right" },
    ],
    rows,
  );
}

/** The header lines every benchmark prints: where it ran. */
export function environmentLines(extra: Record<string, string>): string[] {
  const cpu = cpus();
  const base: Record<string, string> = {
    node: process.version,
    cpus: `${cpu.length} × ${cpu[0]?.model ?? "unknown"}`,
    "load average": loadavg()
      .map((n) => n.toFixed(2))
      .join(" "),
    ...extra,
  };
  const width = Math.max(...Object.keys(base).map((k) => k.length));
  return Object.entries(base).map(([key, value]) => `  ${key.padEnd(width)}  ${value}`);
}

/** PostgreSQL's version and the settings that decide commit cost. */
export async function postgresDescription(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS sc, current_setting('fsync') AS f,
              current_setting('shared_buffers') AS sb`,
    );
    const r = rows[0] as { v: string; sc: string; f: string; sb: string };
    const where = new URL(url);
    return `PostgreSQL ${r.v} at ${where.host} (synchronous_commit=${r.sc}, fsync=${r.f}, shared_buffers=${r.sb})`;
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Throw-away databases and schemas, cleanup

/** A short random suffix for names of this run. */
export function runId(): string {
  return randomUUID().slice(0, 8);
}

async function admin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function checked(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`Not a plain identifier: ${name}`);
  return name;
}

/** Creates database `name` on the server of `url` and returns its URL. */
export async function createDatabase(url: string, name: string): Promise<string> {
  await admin(url, (client) => client.query(`CREATE DATABASE ${checked(name)}`));
  return withDatabase(url, name);
}

export async function dropDatabase(url: string, name: string): Promise<void> {
  await admin(url, (client) => client.query(`DROP DATABASE IF EXISTS ${checked(name)} WITH (FORCE)`));
}

export async function createSchema(url: string, name: string): Promise<void> {
  await admin(url, (client) => client.query(`CREATE SCHEMA ${checked(name)}`));
}

export async function dropSchema(url: string, name: string): Promise<void> {
  await admin(url, (client) => client.query(`DROP SCHEMA IF EXISTS ${checked(name)} CASCADE`));
}

/**
 * Undo steps run last-in first-out, once: at the end of the run, or when the run fails or is interrupted
 * (SIGINT/SIGTERM), so that no database, schema, child process or broker outlives the benchmark.
 */
export class Cleanup {
  private readonly steps: { label: string; undo: () => Promise<unknown> }[] = [];
  private running: Promise<void> | null = null;

  constructor() {
    const onSignal = (signal: NodeJS.Signals) => {
      console.error(`\n${signal}: cleaning up`);
      void this.run().finally(() => process.exit(130));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }

  add(label: string, undo: () => Promise<unknown>): void {
    this.steps.push({ label, undo });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        try {
          await step.undo();
        } catch (err) {
          console.error(`cleanup: ${step.label} failed: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Payload: one TaskCreated, as `task.create` appends it

/** Params of a `task.create` as in test/fixtures/command-mix.ts (what an engine connector sends). */
export function createTaskParams(id: string): Record<string, unknown> {
  return { id, sourceReference, taskDefinitionKey: "review", name: `Review ${id}`, candidateGroups: ["muppetshow"], priority: 50 };
}

/** The event `task.create` appends for `createTaskParams(id)`: the decider's TaskCreated plus the metadata the aggregate mixin adds. */
export function taskCreatedEvent(id: string): { type: string; data: Record<string, any>; metadata: Record<string, any> } {
  const command = { type: "CreateTask", ...createTaskParams(id) } as unknown as CreateTask;
  const [event] = taskDecider.decide(command, taskDecider.initialState);
  return {
    type: event!.type,
    data: event!.data as unknown as Record<string, any>,
    metadata: { commandType: "CreateTask", correlationId: randomUUID(), node: "bench-node" },
  };
}

/** Bytes of an event's data plus metadata as JSON (what the event store counts against its limit). */
export function eventBytes(event: { data: unknown; metadata: unknown }): number {
  return Buffer.byteLength(JSON.stringify(event.data)) + Buffer.byteLength(JSON.stringify(event.metadata));
}
