// API load benchmark (npm run bench:api): HTTP load with autocannon against the REST gateway, in one run:
//   - GET /api/tasks as the example user kermit (X-Current-User-ID), who sees a few thousand tasks: the default
//     page (50, -createTime) and a page with two filters and a sort; each with the gateway's kept answers as
//     configured (API_ANSWER_CACHE_MB: every request after the first is answered from memory once the view has
//     confirmed its version) and with none kept (every request runs the view query);
//   - GET /api/health on the same gateway (no view, no authentication: the gateway's own floor);
//   - GET /hello on a bare moleculer-web gateway in the same broker (one alias to an action returning a constant
//     JSON, its own port): what moleculer-web and Moleculer cost without Taskpool.
// The platform runs in this process: the production broker configuration (moleculer.config.ts, without
// transporter) with the eventstore (a fresh schema on the local PostgreSQL), the view and the api services.
// The tasks — each correlated with one data entry, as in Polyflow's examples — are appended as events straight
// into the event store (append_to_streams, see bench/view.bench.ts) and projected by the view before the load.
// autocannon runs as a child process, so that it does not share the server's event loop.
//
// View stores (BENCH_API_STORE): postgres (default; the PostgreSQL view in a fresh schema of the local server,
// 100,000 tasks, the users of config/users.json among 1,000 more in 1–3 of 100 groups), pglite (the PostgreSQL view
// on an embedded PGlite in a temporary directory, what `npm start` runs), memory (alias embedded: the in-memory
// store), mongo (FerretDB); the last three with 20,000 tasks and 200 more users in 10 more groups by default.
//
// Environment: BENCH_API_TASKS (default 100000 on postgres, else 20000), BENCH_API_STORE (postgres | pglite |
// memory | embedded | mongo; default postgres), BENCH_USERS / BENCH_GROUPS (extra users and groups; default 1000 /
// 100 on postgres, else 200 / 10),
// BENCH_API_TARGETS (rows to load, 1-based, default all), BENCH_STREAM_RATE (new tasks/s during the streaming rows, default 20), BENCH_SECONDS (per target, default 10), BENCH_WARMUP_SECONDS (default 2), BENCH_CONNECTIONS (default 10),
// BENCH_DATABASE_URL / BENCH_MONGO_URL (default: TEST_* or `scripts/services.sh env`).
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { MongoClient } from "mongodb";
import pg from "pg";
import { brokerConfig } from "../moleculer.config.ts";
import { readEnvironment } from "../lib/env.ts";
import { Directory } from "../lib/directory.ts";
import { AnswerCache } from "../gateway/answer-cache.ts";
import EventStoreService from "../services/eventstore.service.ts";
import ViewService from "../services/view.service.ts";
import { random } from "../test/fixtures/command-mix.ts";
import { appendAll, mongoDescription, mongoUrl, population, ratio, taskWithEntryAppends, waitForView, type Population } from "./view.bench.ts";
import { Cleanup, databaseUrl, dropSchema, envNumber, environmentLines, formatMs, formatRate, formatTable, percentile, postgresDescription, runId } from "./lib.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
process.chdir(repoRoot);

const storeKind = (process.env.BENCH_API_STORE ?? "postgres").trim().replace(/^embedded$/, "memory");
if (!["postgres", "pglite", "memory", "mongo"].includes(storeKind)) throw new Error(`BENCH_API_STORE must be postgres, pglite, memory (embedded) or mongo, got "${storeKind}"`);
const onServer = storeKind === "postgres";
const tasks = Math.floor(envNumber("BENCH_API_TASKS", onServer ? 100_000 : 20_000));
const extraUsers = Math.floor(envNumber("BENCH_USERS", onServer ? 1000 : 200));
const extraGroups = Math.floor(envNumber("BENCH_GROUPS", onServer ? 100 : 10));
const seconds = envNumber("BENCH_SECONDS", 10);
const warmupSeconds = envNumber("BENCH_WARMUP_SECONDS", 2);
const connections = Math.floor(envNumber("BENCH_CONNECTIONS", 10));
// BENCH_API_TARGETS: which rows of the table to load (1-based, comma-separated; default all) — e.g. "2" to profile
// the uncached task list alone (node --cpu-prof); the bare route, the ratios' baseline, always runs.
const onlyTargets = process.env.BENCH_API_TARGETS ? process.env.BENCH_API_TARGETS.split(",").map((n) => Number(n.trim())) : null;
const USER = "kermit";
// BENCH_STREAM_RATE: new tasks (each with its data entry) per second appended during the "streaming" targets.
const streamRate = envNumber("BENCH_STREAM_RATE", 20);

// The gateway reads RATE_LIMIT when its module loads: 1200 requests per minute and user by default, which a load
// test of one user exceeds within a second (every further answer would be 429). The limiter stays on, with a
// limit the run cannot reach.
const rateLimitNote = process.env.RATE_LIMIT ? `RATE_LIMIT=${process.env.RATE_LIMIT} (from the environment)` : "RATE_LIMIT=1000000000 (default 1200/min would answer 429)";
process.env.RATE_LIMIT ??= "1000000000";
const { default: ApiService } = await import("../services/api.service.ts");

// ---------------------------------------------------------------------------------------------------------------
// Seed: the example directory's users among BENCH_USERS more, their groups among BENCH_GROUPS more; one data
// entry per task

function seedPopulation(next: () => number): Population {
  const directory = Directory.load();
  const others = population(extraUsers, extraGroups, next);
  const groups = [...new Set([...directory.users.flatMap((u) => u.groups), ...others.groups])];
  const users = [...directory.users.map((u) => ({ username: u.username, groups: u.groups })), ...others.users];
  return { users, usernames: users.map((u) => u.username), groups };
}

// ---------------------------------------------------------------------------------------------------------------
/** CPU time (user + system, ms) of every PostgreSQL process on this machine, from /proc; null where unreadable. */
function postgresCpuMs(): number | null {
  try {
    const tick = 1000 / 100; // USER_HZ: 100 on Linux
    let total = 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(")");
      if (!stat.slice(stat.indexOf("(") + 1, close).startsWith("postgres")) continue;
      const fields = stat.slice(close + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * tick;
    }
    return total;
  } catch {
    return null;
  }
}

// autocannon in a child process

interface CannonResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  bytesPerRequest: number;
}

const require = createRequire(import.meta.url);
const autocannonBin = require.resolve("autocannon/autocannon.js");

function autocannon(url: string, headers: Record<string, string>, duration: number): Promise<CannonResult> {
  const args = [autocannonBin, "--json", "-c", String(connections), "-d", String(duration)];
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}=${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`autocannon failed: ${err.message}\n${stderr}`));
      try {
        const r = JSON.parse(stdout);
        const total = r.latency.totalCount as number;
        resolve({
          requestsPerSecond: r.requests.average,
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          total,
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          bytesPerRequest: total > 0 ? r.throughput.total / total : 0,
        });
      } catch (parseError) {
        reject(new Error(`autocannon printed no JSON (${(parseError as Error).message}):\n${stdout.slice(0, 500)}\n${stderr.slice(0, 500)}`));
      }
    });
  });
}

/** `n` sequential calls after 3 unmeasured ones. */
async function sequentialCalls(n: number, op: () => Promise<unknown>): Promise<{ n: number; p50Ms: number; p99Ms: number; perSecond: number }> {
  for (let i = 0; i < 3; i++) await op();
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await op();
    latencies.push(performance.now() - s);
  }
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { n, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), perSecond: n / elapsed };
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = performance.now();
  const url = databaseUrl();
  const mongo = storeKind === "mongo" ? mongoUrl() : null;
  const id = runId();
  const schema = `bench_api_${id}`;
  const mongoDatabase = `bench_api_${id}`;
  const cleanup = new Cleanup();

  // ---- seed ----
  const next = random(4242);
  const pop = seedPopulation(next);
  const viewSchema = `${schema}_view`;
  cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
  if (onServer) cleanup.add(`drop schema ${viewSchema}`, () => dropSchema(url, viewSchema));
  const pgliteDir = storeKind === "pglite" ? mkdtempSync(join(tmpdir(), "taskpool-bench-api-")) : null;
  if (pgliteDir) cleanup.add(`remove ${pgliteDir}`, async () => rmSync(pgliteDir, { recursive: true, force: true }));
  const seedStart = performance.now();
  // Even appends: a task's data entry; odd appends: the task itself (correlated with it).
  const appends = await (async () => {
    const setup = new ServiceBroker({ namespace: `bench-${id}-setup`, nodeID: `bench-${id}-setup`, logger: false, skipProcessEventRegistration: true });
    setup.createService({ ...EventStoreService, settings: { databaseUrl: url, schema } });
    await setup.start();
    await setup.stop();
    let lastReport = performance.now();
    return appendAll(url, schema, tasks * 2, taskWithEntryAppends(pop, next), {
      batch: 1000,
      onProgress: (done) => {
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          console.error(`  seeding: ${Math.floor(done / 2).toLocaleString("en-US")} / ${tasks.toLocaleString("en-US")} tasks`);
        }
      },
    });
  })();
  const seedSeconds = (performance.now() - seedStart) / 1000;
  console.error(`Seeded ${appends.toLocaleString("en-US")} events (${tasks.toLocaleString("en-US")} tasks + data entries) in ${seedSeconds.toFixed(1)} s`);

  // ---- platform ----
  const config = brokerConfig(readEnvironment({ ...process.env, LOG_LEVEL: "warn" }));
  const broker = new ServiceBroker({ ...config, namespace: `bench-${id}`, nodeID: `bench-api-${id}`, transporter: undefined, logger: { type: "Console", options: { level: "warn" } } });
  broker.createService({ ...EventStoreService, settings: { databaseUrl: url, schema } });
  const viewSettings: Record<string, unknown> = {
    postgres: { store: "postgres", databaseUrl: url, schema: viewSchema, mongoUrl: null },
    pglite: { store: "postgres", databaseUrl: null, pgliteDir: pgliteDir ? join(pgliteDir, "pglite") : null, schema: "view", mongoUrl: null },
    memory: { store: "memory", mongoUrl: null },
    mongo: { store: "mongo", mongoUrl: mongo, database: mongoDatabase },
  }[storeKind]!;
  broker.createService({ ...ViewService, settings: viewSettings });
  const api = broker.createService({ ...ApiService, settings: { ...ApiService.settings, port: 0, ip: "127.0.0.1" } } as ServiceSchema);
  const bare = broker.createService({
    name: "bare",
    mixins: [ApiGateway],
    settings: { port: 0, ip: "127.0.0.1", routes: [{ path: "/", mappingPolicy: "restrict", aliases: { "GET /hello": "bare.hello" } }] },
    actions: {
      hello: {
        handler() {
          return { hello: "world", status: "UP" };
        },
      },
    },
  } as ServiceSchema);
  let stopped = false;
  cleanup.add("stop the broker", async () => {
    if (!stopped) {
      stopped = true;
      await broker.stop();
    }
  });
  if (mongo) {
    cleanup.add(`drop MongoDB database ${mongoDatabase}`, async () => {
      const client = new MongoClient(mongo);
      try {
        await client.connect();
        await client.db(mongoDatabase).dropDatabase();
      } finally {
        await client.close();
      }
    });
  }

  try {
    await broker.start();
    const p0 = performance.now();
    await waitForView(broker, "projection");
    const projectionSeconds = (performance.now() - p0) / 1000;
    console.error(`View caught up (${appends.toLocaleString("en-US")} events) in ${projectionSeconds.toFixed(1)} s`);

    const port = (api as any).server.address().port as number;
    const barePort = (bare as any).server.address().port as number;
    const base = `http://127.0.0.1:${port}`;
    const filtered = `/api/tasks?filters=${encodeURIComponent("amount>500")}&filters=${encodeURIComponent("task.priority<80")}&sort=${encodeURIComponent("-task.dueDate")}`;
    // Each list twice: as configured (API_ANSWER_CACHE_MB, default 32: the answer kept while the view stands still,
    // which is every request of this run after the first), and with no answer kept (0: every request runs the query).
    // And the default list twice more while new tasks stream in (BENCH_STREAM_RATE per second, for random users'
    // groups as seeded): a user's kept answer lasts until a task the user may see changes, not until any task does.
    const targets: { label: string; url: string; headers: Record<string, string>; keep?: boolean; stream?: boolean }[] = [
      { label: "GET /api/tasks (kermit, page of 50, default sort), answer kept", url: `${base}/api/tasks`, headers: { "X-Current-User-ID": USER }, keep: true },
      { label: "GET /api/tasks (same), no answer kept: every request queries", url: `${base}/api/tasks`, headers: { "X-Current-User-ID": USER }, keep: false },
      { label: `GET /api/tasks (same), answer kept, ${streamRate} new tasks/s streaming in`, url: `${base}/api/tasks`, headers: { "X-Current-User-ID": USER }, keep: true, stream: true },
      { label: `GET /api/tasks (same), no answer kept, ${streamRate} new tasks/s streaming in`, url: `${base}/api/tasks`, headers: { "X-Current-User-ID": USER }, keep: false, stream: true },
      { label: "GET /api/tasks?filters=amount>500&filters=task.priority<80&sort=-task.dueDate, kept", url: `${base}${filtered}`, headers: { "X-Current-User-ID": USER }, keep: true },
      { label: "GET /api/tasks?filters=… (same), no answer kept", url: `${base}${filtered}`, headers: { "X-Current-User-ID": USER }, keep: false },
      { label: "GET /api/health (same gateway)", url: `${base}/api/health`, headers: {} },
      { label: "GET /hello (bare moleculer-web route, constant JSON)", url: `http://127.0.0.1:${barePort}/hello`, headers: {} },
    ];

    // What the user sees: total visible, page size, body size, one data entry per task.
    const probes: string[] = [];
    for (const target of targets) {
      const response = await fetch(target.url, { headers: target.headers });
      const body = await response.text();
      if (response.status !== 200) throw new Error(`${target.label}: HTTP ${response.status}: ${body.slice(0, 300)}`);
      const count = response.headers.get("x-elementcount");
      const parsed = JSON.parse(body);
      const detail = Array.isArray(parsed) ? `, ${parsed.length} elements, ${parsed.filter((e: { dataEntries?: unknown[] }) => (e.dataEntries ?? []).length > 0).length} with a data entry` : "";
      probes.push(`${target.label.split(" (")[0]!.slice(0, 60)}: 200${count !== null ? `, X-ElementCount ${count}` : ""}${detail}, ${body.length.toLocaleString("en-US")} B`);
    }

    const header = [
      "API load benchmark: autocannon against the REST gateway and a bare moleculer-web route, same broker",
      ...environmentLines({
        "event store": await postgresDescription(url),
        "view store": mongo ? await (async () => {
          const client = new MongoClient(mongo);
          try {
            await client.connect();
            return await mongoDescription(client, mongo);
          } finally {
            await client.close();
          }
        })() : {
          postgres: `PostgreSQL view (VIEW_STORE=postgres), schema ${viewSchema} on the same server`,
          pglite: "PostgreSQL view on an embedded PGlite in a temporary directory (what `npm start` runs)",
          memory: "memory (mingo in memory, rebuilt at every start)",
        }[storeKind]!,
        data: `${tasks.toLocaleString("en-US")} tasks + ${tasks.toLocaleString("en-US")} correlated data entries (${appends.toLocaleString("en-US")} events); users of config/users.json + ${extraUsers}, groups + ${extraGroups}`,
        user: `${USER} (X-Current-User-ID), groups ${JSON.stringify(Directory.load().find(USER)?.groups ?? [])}`,
        load: `autocannon (child process), ${connections} connections, ${seconds} s per target after ${warmupSeconds} s warm-up; ${rateLimitNote}`,
        broker: "moleculer.config.ts (metrics, validator, circuit breaker, tracking), no transporter; eventstore + view + api + bare gateway",
      }),
      ...probes.map((p) => `  probe         ${p}`),
    ].join("\n");
    console.error(header);

    const results: { label: string; r: CannonResult; nodeCpuMs: number; postgresCpuMs: number | null }[] = [];
    const streamNotes: string[] = [];
    // New tasks with their data entries, appended straight into the event store (as seeded: ids after the seeded
    // ones), one task every 1/BENCH_STREAM_RATE s; the view projects them while the load runs.
    let streamedAppends = tasks * 2;
    const makeAppend = taskWithEntryAppends(pop, random(777));
    const streamTasks = () => {
      const pool = new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${schema}` });
      let appended = 0;
      let failure: unknown = null;
      let busy: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        busy = busy.then(async () => {
          const requests = [makeAppend(streamedAppends), makeAppend(streamedAppends + 1)];
          streamedAppends += 2;
          await pool.query(`SELECT idx, outcome FROM append_to_streams($1::jsonb)`, [JSON.stringify(requests)]);
          appended += 1;
        }).catch((err: unknown) => {
          failure ??= err;
        });
      }, 1000 / streamRate);
      return {
        appended: () => appended,
        stop: async () => {
          clearInterval(timer);
          await busy;
          await pool.end();
          if (failure) throw failure;
        },
      };
    };
    const answerCacheBytes = readEnvironment().api.answerCacheBytes;
    for (const target of targets.filter((_, i) => onlyTargets === null || onlyTargets.includes(i + 1) || i === targets.length - 1)) {
      // The gateway's kept answers (gateway/answer-cache.ts), replaced for the target: as configured, or none.
      if (target.keep !== undefined) (api as unknown as { answers: AnswerCache }).answers = new AnswerCache(target.keep ? answerCacheBytes : 0);
      const stream = target.stream ? streamTasks() : null;
      await autocannon(target.url, target.headers, warmupSeconds);
      const cpu = process.cpuUsage();
      const postgresCpu = postgresCpuMs();
      const streamedBefore = stream?.appended() ?? 0;
      const r = await autocannon(target.url, target.headers, seconds);
      const used = process.cpuUsage(cpu);
      const postgresAfter = postgresCpuMs();
      if (stream) {
        const streamed = stream.appended() - streamedBefore;
        await stream.stop();
        streamNotes.push(`${target.label}: ${streamed.toLocaleString("en-US")} tasks appended during the measured ${seconds} s`);
      }
      results.push({
        label: target.label,
        r,
        nodeCpuMs: (used.user + used.system) / 1000 / Math.max(1, r.total),
        postgresCpuMs: postgresCpu === null || postgresAfter === null ? null : (postgresAfter - postgresCpu) / Math.max(1, r.total),
      });
      console.error(`  ${target.label}: ${formatRate(r.requestsPerSecond)} req/s, p50 ${formatMs(r.p50Ms)} ms, p99 ${formatMs(r.p99Ms)} ms, non-2xx ${r.non2xx}, errors ${r.errors}`);
    }
    // Where the time of GET /api/tasks goes: the view actions it calls, in-process and sequential, no HTTP.
    const user = { username: USER, groups: Directory.load().find(USER)?.groups ?? [] };
    const inProcess: { label: string; t: { n: number; p50Ms: number; p99Ms: number; perSecond: number } }[] = [];
    for (const [label, action] of [
      ["view.tasksWithDataEntriesForUser (what GET /api/tasks calls)", "view.tasksWithDataEntriesForUser"],
      ["view.tasksForUser (same page, no data-entry join)", "view.tasksForUser"],
    ] as const) {
      const t = await sequentialCalls(30, () => broker.call(action, { user, page: 0, size: 50 }));
      inProcess.push({ label, t });
      console.error(`  ${label}: p50 ${formatMs(t.p50Ms)} ms, p99 ${formatMs(t.p99Ms)} ms`);
    }
    const bareResult = results[results.length - 1]!.r;
    const table = formatTable(
      [
        { header: "target" },
        { header: "requests", align: "right" },
        { header: "req/s", align: "right" },
        { header: "p50 ms", align: "right" },
        { header: "p99 ms", align: "right" },
        { header: "non-2xx", align: "right" },
        { header: "errors", align: "right" },
        { header: "B/resp", align: "right" },
        { header: "÷ bare route", align: "right" },
        { header: "node CPU ms/req", align: "right" },
        { header: "PG CPU ms/req", align: "right" },
      ],
      results.map(({ label, r, nodeCpuMs, postgresCpuMs: pgMs }) => [
        label,
        r.total.toLocaleString("en-US"),
        formatRate(r.requestsPerSecond),
        r.p50Ms < 1 ? "<1" : String(Math.round(r.p50Ms)),
        r.p99Ms < 1 ? "<1" : String(Math.round(r.p99Ms)),
        String(r.non2xx),
        String(r.errors + r.timeouts),
        formatRate(r.bytesPerRequest),
        ratio(r.requestsPerSecond, bareResult.requestsPerSecond),
        nodeCpuMs.toFixed(2),
        pgMs === null ? "-" : pgMs.toFixed(2),
      ]),
    );
    const took = (performance.now() - startedAt) / 1000;
    console.log(`\n${header}\n`);
    console.log(`Seed ${seedSeconds.toFixed(1)} s; view projection of ${appends.toLocaleString("en-US")} events ${projectionSeconds.toFixed(1)} s (${formatRate(appends / projectionSeconds)} events/s)\n`);
    console.log(table);
    console.log(
      "\nreq/s: autocannon's mean per second; p50/p99: autocannon's latency histogram in whole milliseconds (<1: below one);\n" +
        "p99 of fewer than 100 requests is their maximum. ÷ bare route: req/s ratio. CPU per request: this process's user +\n" +
          "system time (process.cpuUsage) and that of every PostgreSQL process on this machine (/proc; other work on the server\n" +
          "counts too), divided by the requests of the measured run — steadier than req/s on a loaded machine.",
    );
    if (streamNotes.length > 0) console.log(`\nStreaming targets:\n${streamNotes.map((note) => `  ${note}`).join("\n")}`);
    console.log(`\nThe view actions behind GET /api/tasks (kermit, page 0 of 50), called in-process one after another, no HTTP:`);
    console.log(
      formatTable(
        [{ header: "call" }, { header: "calls", align: "right" }, { header: "p50 ms", align: "right" }, { header: "p99 ms", align: "right" }, { header: "calls/s", align: "right" }],
        inProcess.map(({ label, t }) => [label, String(t.n), formatMs(t.p50Ms), formatMs(t.p99Ms), t.perSecond.toFixed(1)]),
      ),
    );
    console.log(`\nRSS of this process (the node: broker with eventstore, view, api and the bare gateway; autocannon runs apart): ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MB`);
    console.log(`\nMeasured in ${took.toFixed(0)} s.`);
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    await cleanup.run();
  }
}

await main();
