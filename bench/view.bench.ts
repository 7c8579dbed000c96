// View benchmark (npm run bench:view): the `view` service on a realistic task list, next to the same work done
// straight through the store's own client in the same run.
//
// BENCH_STORES selects the stores: postgres and pglite (the default: the PostgreSQL view on the server at
// BENCH_TASKS, default 100,000, and the embedded PGlite view next to the memory store at 20,000) run in
// bench/view-sql.ts, described there; mongo and embedded (FerretDB and the memory store, with TaskCreated only, at
// BENCH_TASKS default 5,000) run below as before.
//
//   1. Seed: N TaskCreated events (one stream per task) written into a fresh event-store schema on the local
//      PostgreSQL through the store's own `append_to_streams` function, a few hundred appends per call.
//   2. For each view store — MongoDB (FerretDB, a fresh database) and the embedded store (mingo in memory):
//      - projection: a `view` service starts on the full log; time until it has applied the last event;
//      - queries: `view.tasksForUser` with two filters, a sort and a page of 50 for random users (sequential),
//        next to the identical query sent without Taskpool — the raw `mongodb` driver (find + countDocuments,
//        in parallel, as the service runs them) and, for the embedded store, mingo over the same documents;
//        the filter document is built by the same domain functions the service calls (parseFilters, parseSort,
//        taskVisibleTo, and, live), and the answers of both are compared before timing;
//      - replay: `view.replay` into a new generation, speed as `view.replayStatus` reports it;
//   3. Raw writes of the very same task documents into fresh collections (same indexes): `insertMany` and
//      `bulkWrite` of `replaceOne` upserts (what the view's store does) in batches of 1000; for the embedded
//      store, structuredClone into a Map (what its write does).
//
// Environment: BENCH_TASKS (default 5000, see DEFAULT_NOTE), BENCH_USERS (1000), BENCH_GROUPS (100),
// BENCH_QUERIES (per store and client, default 30), BENCH_STORES (mongo and/or embedded here), BENCH_SEED (1),
// BENCH_DATABASE_URL / BENCH_MONGO_URL (default: TEST_* or `scripts/services.sh env`). Everything written goes
// into a fresh schema / database, dropped at the end.
//
// Sizes: on FerretDB v1 (PostgreSQL backend) every view batch costs time proportional to the collection (its
// `_id: {$in}` lookup and each `replaceOne` upsert scan the table), so projection and replay grow quadratically:
// 100,000 tasks take hours there. The default (5,000 tasks) finishes in about six minutes on 2 cores;
// `BENCH_STORES=embedded BENCH_TASKS=100000` runs the full size on the embedded store in a few minutes, and
// BENCH_TASKS=100000 alone still runs everything at full size for whoever has the hours.
//
// The seeding helpers are exported for bench/api.bench.ts; main() runs only when this file is the entry point.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ServiceBroker } from "moleculer";
import { MongoClient, type Collection, type Document } from "mongodb";
import { Query } from "mingo";
import pg from "pg";
import EventStoreService from "../services/eventstore.service.ts";
import ViewService from "../services/view.service.ts";
import { taskDecider, taskStreamId, type CreateTask } from "../domain/task.ts";
import { dataEntryDecider, dataEntryStreamId } from "../domain/data-entry.ts";
import { domainUpcasters } from "../domain/upcasters.ts";
import { and, parseFilters, parseSort, type MongoFilter, type SortSpec } from "../view/filters.ts";
import { live, taskVisibleTo } from "../view/authorization.ts";
import type { User } from "../domain/types.ts";
import type { AppendRequest, NewEvent, RecordedEvent } from "../stores/event-store.ts";
import { projectTask, targetOf, type TaskDocument, type ViewEvent } from "../view/documents.ts";
import { compareTokens, START_TOKEN } from "../lib/tokens.ts";
import { random } from "../test/fixtures/command-mix.ts";
import {
  Cleanup,
  databaseUrl,
  dropSchema,
  envNumber,
  environmentLines,
  formatMs,
  formatRate,
  formatRatio,
  formatTable,
  percentile,
  postgresDescription,
  runId,
} from "./lib.ts";

// ---------------------------------------------------------------------------------------------------------------
// Seeding (shared with bench/api.bench.ts)

/** MongoDB of the benchmarks: BENCH_MONGO_URL, else TEST_MONGO_URL, else `scripts/services.sh env`. */
export function mongoUrl(): string {
  let url = process.env.BENCH_MONGO_URL ?? process.env.TEST_MONGO_URL;
  if (!url) {
    try {
      const out = execFileSync("bash", ["scripts/services.sh", "env"], { encoding: "utf8", cwd: fileURLToPath(new URL("..", import.meta.url)) });
      url = /^export TEST_MONGO_URL=(.*)$/m.exec(out)?.[1]?.replace(/^["']|["']$/g, "");
    } catch {
      // reported below
    }
  }
  if (!url) throw new Error("No MongoDB address: set BENCH_MONGO_URL or run `bash scripts/services.sh up`");
  return url;
}

/** "FerretDB v1.24.2 (wire version 7.0.42)" or "MongoDB 7.0.x", from buildInfo. */
export async function mongoDescription(client: MongoClient, url: string): Promise<string> {
  const info = await client.db("admin").command({ buildInfo: 1 });
  const where = new URL(url).host;
  return info.ferretdbVersion ? `FerretDB ${info.ferretdbVersion} (MongoDB ${info.version} wire) at ${where}` : `MongoDB ${info.version} at ${where}`;
}

export interface Population {
  users: User[];
  usernames: string[];
  groups: string[];
}

function pick<T>(items: readonly T[], next: () => number): T {
  return items[Math.floor(next() * items.length)]!;
}

function pickDistinct<T>(items: readonly T[], count: number, next: () => number): T[] {
  const chosen = new Set<T>();
  while (chosen.size < Math.min(count, items.length)) chosen.add(pick(items, next));
  return [...chosen];
}

/** `users` users (user-<n>), each in 1–3 of `groups` groups (group-<n>). */
export function population(users: number, groups: number, next: () => number): Population {
  const groupNames = Array.from({ length: groups }, (_, g) => `group-${g}`);
  const list = Array.from({ length: users }, (_, u) => ({ username: `user-${u}`, groups: pickDistinct(groupNames, 1 + Math.floor(next() * 3), next) }));
  return { users: list, usernames: list.map((u) => u.username), groups: groupNames };
}

const CATEGORIES = ["hardware", "software", "travel", "training", "consulting", "office"];
const COUNTRIES = ["DE", "AT", "CH", "FR", "NL", "IT"];
const APPLICATIONS = ["purchase-approval", "travel-requests", "hr-onboarding", "claims"];
const TASK_KINDS = ["approve", "review", "check", "sign", "archive"];
const YEAR_START = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

/**
 * The CreateTask of task `index`: 1–3 candidate groups, 0–3 candidate users, an assignee on 30 %, createTime over
 * a year, a due date 1–60 days later (10 % without), priority 0–100, a payload with amount (0–1000), category,
 * currency, customer and a flag, one of four applications, optionally correlations.
 */
export function benchTask(index: number, next: () => number, pop: Population, correlations: Record<string, string> = {}): CreateTask {
  const id = `bench-${index}`;
  const application = pick(APPLICATIONS, next);
  const kind = pick(TASK_KINDS, next);
  const category = pick(CATEGORIES, next);
  const created = YEAR_START + Math.floor(next() * 365 * DAY);
  const candidateGroups = pickDistinct(pop.groups, 1 + Math.floor(next() * 3), next);
  const candidateUsers = pickDistinct(pop.usernames, Math.floor(next() * 4), next);
  const assignee = next() < 0.3 ? (candidateUsers.length > 0 && next() < 0.7 ? pick(candidateUsers, next) : pick(pop.usernames, next)) : null;
  return {
    type: "CreateTask",
    id,
    sourceReference: {
      type: "process",
      instanceId: `pi-${index}`,
      executionId: `ex-${index}`,
      definitionId: `${application}:1`,
      definitionKey: application,
      name: application.replace("-", " "),
      applicationName: application,
    },
    taskDefinitionKey: kind,
    name: `${kind[0]!.toUpperCase()}${kind.slice(1)} ${category} request`,
    description: `Please ${kind} the ${category} request ${index}`,
    formKey: `${application}-${kind}`,
    businessKey: `BK-${index}`,
    priority: Math.floor(next() * 101),
    createTime: new Date(created).toISOString(),
    dueDate: next() < 0.9 ? new Date(created + (1 + Math.floor(next() * 60)) * DAY).toISOString() : null,
    followUpDate: null,
    owner: null,
    assignee,
    candidateUsers,
    candidateGroups,
    payload: {
      amount: Math.round(next() * 100_000) / 100,
      category,
      currency: "EUR",
      customer: { name: `Customer ${Math.floor(next() * 5000)}`, country: pick(COUNTRIES, next) },
      urgent: next() < 0.2,
    },
    correlations,
  };
}

/** An event as the event store stores it (the service adds eventId, schemaVersion and metadata the same way). */
export function newEvent(type: string, data: object, commandType: string): NewEvent {
  return {
    eventId: randomUUID(),
    type,
    schemaVersion: domainUpcasters.currentVersion(type),
    data: data as NewEvent["data"],
    metadata: { commandType, correlationId: randomUUID(), node: "bench-seed" },
  };
}

/** The append of a new task stream with its TaskCreated, as `task.create` would write it. */
export function taskAppend(command: CreateTask): AppendRequest {
  const events = taskDecider.decide(command, taskDecider.initialState);
  return {
    streamId: taskStreamId(command.id),
    expectedVersion: 0,
    commandId: null,
    events: events.map((e) => newEvent(e.type, e.data as object, "CreateTask")),
  };
}

/** The data entry type of the seeded data entries (one per task, correlated with it). */
export const ENTRY_TYPE = "io.taskpool.bench.PurchaseRequest";

/** The DataEntryCreated a task correlates with: same application, authorized to the task's candidate groups. */
export function dataEntryAppend(task: CreateTask, entryId: string): AppendRequest {
  const decider = dataEntryDecider({ deletionStrategy: "lax" });
  const events = decider.decide(
    {
      type: "CreateOrUpdateDataEntry",
      entryType: ENTRY_TYPE,
      entryId,
      typeName: "Purchase Request",
      applicationName: task.sourceReference.applicationName,
      name: `Purchase request ${entryId}`,
      description: task.description ?? null,
      state: { processingType: "IN_PROGRESS", state: "Submitted" },
      payload: task.payload ?? {},
      correlations: {},
      formKey: null,
      authorizationChanges: (task.candidateGroups ?? []).map((name) => ({ kind: "AddGroup" as const, name })),
      modification: { time: task.createTime ?? new Date().toISOString(), username: task.assignee ?? null, log: "Submitted" },
    },
    decider.initialState,
  );
  return {
    streamId: dataEntryStreamId(ENTRY_TYPE, entryId),
    expectedVersion: 0,
    commandId: null,
    events: events.map((e) => newEvent(e.type, e.data as object, "CreateOrUpdateDataEntry")),
  };
}

/**
 * Appends of `tasks` tasks, each with one correlated data entry written just before it (even index: the data
 * entry of task i/2, odd: the task), built from one random sequence: call make(0), make(1), … in order.
 */
export function taskWithEntryAppends(pop: Population, next: () => number): (i: number) => AppendRequest {
  let pending: CreateTask | null = null;
  return (i) => {
    const index = Math.floor(i / 2);
    if (i % 2 === 0) {
      pending = benchTask(index, next, pop, { [ENTRY_TYPE]: `pr-${index}` });
      return dataEntryAppend(pending, `pr-${index}`);
    }
    return taskAppend(pending!);
  };
}

/**
 * Appends `total` appends made by `make(i)` through the event store's `append_to_streams` function in `schema`,
 * `batch` appends per call, `concurrency` calls at once. Returns the number of events written.
 */
export async function appendAll(
  url: string,
  schema: string,
  total: number,
  make: (index: number) => AppendRequest,
  options: { batch?: number; concurrency?: number; onProgress?: (done: number) => void } = {},
): Promise<number> {
  const batch = options.batch ?? 500;
  const concurrency = options.concurrency ?? 2;
  const pool = new pg.Pool({ connectionString: url, max: concurrency, options: `-c search_path=${schema}` });
  let cursor = 0;
  let done = 0;
  let events = 0;
  try {
    const worker = async () => {
      while (cursor < total) {
        const from = cursor;
        const to = Math.min(total, from + batch);
        cursor = to;
        const requests: AppendRequest[] = [];
        for (let i = from; i < to; i++) requests.push(make(i));
        const { rows } = await pool.query(`SELECT idx, outcome FROM append_to_streams($1::jsonb)`, [JSON.stringify(requests)]);
        const refused = (rows as { outcome: string }[]).filter((r) => r.outcome !== "appended");
        if (refused.length > 0) throw new Error(`append_to_streams refused ${refused.length} appends (${refused[0]!.outcome})`);
        for (const r of requests) events += r.events.length;
        done += requests.length;
        options.onProgress?.(done);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    await pool.end();
  }
  return events;
}

/** A broker with the event store on `schema` (migrations run at start: the schema is created if missing). */
export function eventStoreBroker(id: string, url: string, schema: string, extra: Record<string, unknown> = {}): ServiceBroker {
  const broker = new ServiceBroker({
    namespace: `bench-${id}`,
    nodeID: `bench-${id}`,
    logger: { type: "Console", options: { level: "warn" } },
    requestTimeout: 120_000,
    skipProcessEventRegistration: true,
    ...extra,
  });
  broker.createService({ ...EventStoreService, settings: { databaseUrl: url, schema } });
  return broker;
}

/**
 * Waits until the local `view` has applied the event store's last event. Compares tokens, not positions: the log
 * is delivered in (transaction id, position) order, so the largest position is not always the last event read.
 * Reports progress on stderr every 10 s.
 */
export async function waitForView(broker: ServiceBroker, label: string): Promise<void> {
  const head = (await broker.call("eventstore.head")) as { globalPosition: number; token: string | null };
  await broker.waitForServices(["view"], 120_000);
  if (!head.token) return;
  let lastReport = performance.now();
  const t0 = performance.now();
  for (;;) {
    let position = { token: START_TOKEN, globalPosition: 0 };
    try {
      position = (await broker.call("view.position")) as { token: string; globalPosition: number };
    } catch {
      // the store may still be connecting
    }
    if (compareTokens(position.token, head.token) >= 0) return;
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const s = (lastReport - t0) / 1000;
      console.error(`  ${label}: at position ${position.globalPosition.toLocaleString("en-US")} of ${head.globalPosition.toLocaleString("en-US")} after ${s.toFixed(0)} s (${formatRate(position.globalPosition / s)} events/s)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements

export interface Timed {
  n: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** `n` sequential operations after `warmup` unmeasured ones; op(i) gets the operation's index (warm-up: negative). */
export async function sequential(n: number, warmup: number, op: (i: number) => Promise<unknown>): Promise<Timed> {
  for (let i = 0; i < warmup; i++) await op(-1 - i);
  const latencies = new Float64Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await op(i);
    latencies[i] = performance.now() - s;
  }
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort();
  return { n, seconds, perSecond: n / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
}

export function throughput(n: number, seconds: number): Timed {
  return { n, seconds, perSecond: n / seconds, p50Ms: Number.NaN, p99Ms: Number.NaN };
}

interface Row {
  store: string;
  what: string;
  result: Timed;
  unit: "q/s" | "events/s" | "docs/s";
  /** Reference of the "÷ raw driver" column. */
  driver?: Timed;
  /** Reference of the "÷ raw in-process" column (embedded store). */
  inProcess?: Timed;
}

export const FILTERS = ["amount>500", "task.priority<80"];
export const SORT = ["-task.dueDate"];
export const PAGE_SIZE = 50;

/** The filter document and sort the view builds for tasksForUser({ user, filters: FILTERS, sort: SORT }). */
function sameQuery(user: User): { filter: MongoFilter; sort: SortSpec } {
  const parsed = parseFilters(FILTERS, "task");
  const sort = parseSort(SORT, "task", "-createTime");
  return { filter: and([live, taskVisibleTo(user), ...parsed.where]), sort };
}

// The task indexes of view/generations.ts (INDEXES.tasks), for the raw write baselines.
const TASK_INDEXES: Record<string, 1 | -1>[] = [
  { authorizedPrincipals: 1, deleted: 1, createTime: -1 },
  { deleted: 1, createTime: -1 },
  { assignee: 1 },
  { candidateGroups: 1 },
  { applicationName: 1 },
  { correlationIds: 1 },
  { dueDate: 1 },
];

export async function replay(broker: ServiceBroker, label: string): Promise<{ wall: Timed; reported: Timed; generation: number }> {
  const t0 = performance.now();
  // Right after a restart the view's processor may not hold its lease yet ("runs nowhere"): asked again until it does.
  for (let tries = 0; ; tries++) {
    try {
      await broker.call("view.replay");
      break;
    } catch (err) {
      if (tries >= 50 || !/runs nowhere/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  let lastReport = performance.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const state = (await broker.call("view.replayStatus")) as { status: string; eventsApplied: number; eventsPerSecond: number; generation: number; error: string | null; startedAt: string; finishedAt: string | null };
    if (state.status === "failed") throw new Error(`view.replay failed: ${state.error}`);
    if (state.status === "done") {
      const wall = (performance.now() - t0) / 1000;
      return {
        wall: throughput(state.eventsApplied, wall),
        reported: { ...throughput(state.eventsApplied, state.eventsApplied / state.eventsPerSecond), perSecond: state.eventsPerSecond },
        generation: state.generation,
      };
    }
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      console.error(`  ${label} replay: ${state.eventsApplied.toLocaleString("en-US")} events applied, ${formatRate(state.eventsPerSecond)} events/s`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = performance.now();
  const tasks = Math.floor(envNumber("BENCH_TASKS", DEFAULT_TASKS));
  const userCount = Math.floor(envNumber("BENCH_USERS", 1000));
  const groupCount = Math.floor(envNumber("BENCH_GROUPS", 100));
  const queries = Math.floor(envNumber("BENCH_QUERIES", DEFAULT_QUERIES));
  const seed = Math.floor(envNumber("BENCH_SEED", 1));
  const warmup = Math.max(1, Math.min(10, Math.floor(queries / 10)));
  const allStores = (process.env.BENCH_STORES ?? "postgres,pglite").split(",").map((x) => x.trim());
  if (allStores.length === 0 || allStores.some((x) => !["postgres", "pglite", "mongo", "embedded"].includes(x))) {
    throw new Error(`BENCH_STORES must list postgres, pglite, mongo and/or embedded, got "${process.env.BENCH_STORES}"`);
  }
  const sqlStores = allStores.filter((x) => x === "postgres" || x === "pglite");
  if (sqlStores.length > 0) {
    // The SQL stores have their own run (bench/view-sql.ts), loaded once this module is complete.
    const { sqlViewBench } = await import("./view-sql.ts");
    await sqlViewBench(sqlStores);
  }
  const stores = allStores.filter((x) => x === "mongo" || x === "embedded");
  if (stores.length === 0) return;
  const url = databaseUrl();
  const mongo = stores.includes("mongo") ? mongoUrl() : null;
  const id = runId();
  const schema = `bench_view_${id}`;
  const mongoDatabase = `bench_view_${id}`;
  const cleanup = new Cleanup();
  const rows: (Row | null)[] = [];
  const notes: string[] = [];

  try {
    const client = mongo ? new MongoClient(mongo, { serverSelectionTimeoutMS: 10_000 }) : null;
    if (client) {
      await client.connect();
      cleanup.add("close the driver's client", () => client.close());
      cleanup.add(`drop MongoDB database ${mongoDatabase}`, () => client.db(mongoDatabase).dropDatabase());
    }

    // ---- population and seed ----
    const next = random(seed);
    const pop = population(userCount, groupCount, next);
    const visible = visibleCounts(pop, tasks, seed);
    const header = [
      "View benchmark: projection, replay and view.tasksForUser on MongoDB (FerretDB) and on the embedded store",
      ...environmentLines({
        "event store": await postgresDescription(url),
        "view store": [client && mongo ? await mongoDescription(client, mongo) : null, stores.includes("embedded") ? "embedded: mingo in memory" : null].filter(Boolean).join("; "),
        sizes:
          `BENCH_TASKS=${tasks.toLocaleString("en-US")} (default ${DEFAULT_TASKS.toLocaleString("en-US")}; ${DEFAULT_NOTE}), ` +
          `BENCH_USERS=${userCount}, BENCH_GROUPS=${groupCount}, BENCH_QUERIES=${queries} (+${warmup} warm-up) per store and client, BENCH_STORES=${stores.join(",")}`,
        data:
          `1 TaskCreated per task: 1–3 candidate groups, 0–3 candidate users, 30 % assigned, createTime over 2026, ` +
          `payload {amount, category, currency, customer{name,country}, urgent}; users in 1–3 groups`,
        visibility: `tasks visible per user: median ${visible.median.toLocaleString("en-US")}, min ${visible.min}, max ${visible.max.toLocaleString("en-US")}`,
        query: `view.tasksForUser filters ${JSON.stringify(FILTERS)}, sort ${JSON.stringify(SORT)}, page 0 of ${PAGE_SIZE}, a random user each; sequential`,
        broker: "in-process (no transporter), view + eventstore services with their defaults, log level warn",
      }),
    ].join("\n");
    console.error(header);

    const seedNext = random(seed * 7919 + 1);
    const seedStart = performance.now();
    cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
    // The event store's own migrations create the schema and append_to_streams.
    {
      const setup = eventStoreBroker(`${id}-setup`, url, schema);
      await setup.start();
      await setup.stop();
    }
    let lastSeedReport = performance.now();
    const events = await appendAll(url, schema, tasks, (i) => taskAppend(benchTask(i, seedNext, pop)), {
      batch: 500,
      concurrency: 2,
      onProgress: (done) => {
        if (performance.now() - lastSeedReport > 10_000) {
          lastSeedReport = performance.now();
          console.error(`  seeding: ${done.toLocaleString("en-US")} / ${tasks.toLocaleString("en-US")} tasks`);
        }
      },
    });
    const seedSeconds = (performance.now() - seedStart) / 1000;
    console.error(`Seeded ${events.toLocaleString("en-US")} events in ${seedSeconds.toFixed(1)} s (${formatRate(events / seedSeconds)} events/s) into schema ${schema}`);

    // ---- MongoDB (FerretDB) ----
    let documents: Document[] = [];
    let driverQuery: Timed | undefined;
    let driverInsert: Timed | undefined;
    if (client && mongo) {
      const label = "FerretDB";
      const broker = eventStoreBroker(`${id}-mongo`, url, schema);
      let stopped = false;
      const stop = async () => {
        if (!stopped) {
          stopped = true;
          await broker.stop();
        }
      };
      cleanup.add("stop the MongoDB view broker", stop);
      await broker.start();
      console.error(`${label}: projecting ${events.toLocaleString("en-US")} events into database ${mongoDatabase}`);
      const t0 = performance.now();
      broker.createService({ ...ViewService, settings: { mongoUrl: mongo, database: mongoDatabase, dropDelayMs: 1000 } });
      await waitForView(broker, `${label} projection`);
      const projection = throughput(events, (performance.now() - t0) / 1000);
      console.error(`  ${label} projection: ${formatRate(projection.perSecond)} events/s (${projection.seconds.toFixed(1)} s)`);

      const generation = ((await broker.call("view.position")) as { generation: number }).generation;
      const tasksCollection = client.db(mongoDatabase).collection(`tasks_g${generation}`);
      const rawQuery = async (user: User) => {
        const { filter, sort } = sameQuery(user);
        const [docs, total] = await Promise.all([
          tasksCollection.find(filter).sort(Object.fromEntries(sort)).skip(0).limit(PAGE_SIZE).toArray(),
          tasksCollection.countDocuments(filter),
        ]);
        return { ids: docs.map((d) => String(d._id)), total };
      };
      const mismatch = await checkSame(label, broker, pop, seed, rawQuery);
      if (mismatch) notes.push(mismatch);

      const users = (i: number) => userFor(pop, seed, i);
      const service = await sequential(queries, warmup, (i) => broker.call("view.tasksForUser", { user: users(i), filters: FILTERS, sort: SORT, page: 0, size: PAGE_SIZE }));
      console.error(`  ${label} view.tasksForUser: p50 ${formatMs(service.p50Ms)} ms, p99 ${formatMs(service.p99Ms)} ms`);
      driverQuery = await sequential(queries, warmup, (i) => rawQuery(users(i)));
      console.error(`  ${label} raw driver query: p50 ${formatMs(driverQuery.p50Ms)} ms, p99 ${formatMs(driverQuery.p99Ms)} ms`);

      const replayed = await replay(broker, label);
      console.error(`  ${label} view.replay: ${formatRate(replayed.reported.perSecond)} events/s reported, ${replayed.wall.seconds.toFixed(1)} s wall`);

      // Raw writes of the same documents (as the view builds them) into fresh collections with the same indexes.
      documents = await projectedDocuments(broker);
      driverInsert = await rawWrites(client, mongoDatabase, "raw_insert_many", documents, (c, batch) => c.insertMany(batch, { ordered: false }));
      console.error(`  ${label} raw insertMany: ${formatRate(driverInsert.perSecond)} docs/s`);
      const driverUpsert = await rawWrites(client, mongoDatabase, "raw_bulk_upsert", documents, (c, batch) =>
        c.bulkWrite(batch.map((doc) => ({ replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } })), { ordered: false }),
      );
      console.error(`  ${label} raw bulkWrite upserts: ${formatRate(driverUpsert.perSecond)} docs/s`);
      await stop();

      rows.push(
        { store: label, what: `view.tasksForUser (2 filters, sort, ${PAGE_SIZE}/page; find + count)`, result: service, unit: "q/s", driver: driverQuery },
        { store: label, what: "raw driver: find + countDocuments, same filter", result: driverQuery, unit: "q/s", driver: driverQuery },
        null,
        { store: label, what: "view projection (processor from an empty store)", result: projection, unit: "events/s", driver: driverInsert },
        { store: label, what: "view.replay (replayStatus.eventsPerSecond)", result: replayed.reported, unit: "events/s", driver: driverInsert },
        { store: label, what: "view.replay (wall, incl. indexes and switch)", result: replayed.wall, unit: "events/s", driver: driverInsert },
        { store: label, what: "raw driver: insertMany, 1000 docs/call", result: driverInsert, unit: "docs/s", driver: driverInsert },
        { store: label, what: "raw driver: bulkWrite replaceOne upsert, 1000/call", result: driverUpsert, unit: "docs/s", driver: driverInsert },
      );
    }

    // ---- embedded store ----
    if (stores.includes("embedded")) {
      const label = "embedded";
      const broker = eventStoreBroker(`${id}-embedded`, url, schema);
      let stopped = false;
      const stop = async () => {
        if (!stopped) {
          stopped = true;
          await broker.stop();
        }
      };
      cleanup.add("stop the embedded view broker", stop);
      await broker.start();
      console.error(`${label}: projecting ${events.toLocaleString("en-US")} events into the embedded store`);
      const t0 = performance.now();
      broker.createService({ ...ViewService, settings: { mongoUrl: null, dropDelayMs: 1000 } });
      await waitForView(broker, `${label} projection`);
      const projection = throughput(events, (performance.now() - t0) / 1000);
      console.error(`  ${label} projection: ${formatRate(projection.perSecond)} events/s (${projection.seconds.toFixed(1)} s)`);

      if (documents.length === 0) documents = await projectedDocuments(broker);
      // The same query with mingo over the same documents (what MemoryViewCollection does, minus its copies).
      const mingoQuery = async (user: User) => {
        const { filter, sort } = sameQuery(user);
        const page = new Query(filter).find<Document>(documents).sort(Object.fromEntries(sort)).skip(0).limit(PAGE_SIZE).all();
        const total = new Query(filter).find<Document>(documents).all().length;
        return { ids: page.map((d) => String(d._id)), total };
      };
      const mismatch = await checkSame(label, broker, pop, seed, mingoQuery);
      if (mismatch) notes.push(mismatch);

      const users = (i: number) => userFor(pop, seed, i);
      const service = await sequential(queries, warmup, (i) => broker.call("view.tasksForUser", { user: users(i), filters: FILTERS, sort: SORT, page: 0, size: PAGE_SIZE }));
      console.error(`  ${label} view.tasksForUser: p50 ${formatMs(service.p50Ms)} ms, p99 ${formatMs(service.p99Ms)} ms`);
      const mingo = await sequential(queries, warmup, (i) => mingoQuery(users(i)));
      console.error(`  ${label} raw mingo query: p50 ${formatMs(mingo.p50Ms)} ms, p99 ${formatMs(mingo.p99Ms)} ms`);

      const replayed = await replay(broker, label);
      console.error(`  ${label} view.replay: ${formatRate(replayed.reported.perSecond)} events/s reported, ${replayed.wall.seconds.toFixed(1)} s wall`);
      await stop();

      const t1 = performance.now();
      const map = new Map<string, Document>();
      for (const doc of documents) map.set(String(doc._id), structuredClone(doc));
      const mapWrite = throughput(documents.length, (performance.now() - t1) / 1000);

      rows.push(
        null,
        { store: label, what: `view.tasksForUser (2 filters, sort, ${PAGE_SIZE}/page; find + count)`, result: service, unit: "q/s", driver: driverQuery, inProcess: mingo },
        { store: label, what: "raw mingo: same filter over the same documents", result: mingo, unit: "q/s", driver: driverQuery, inProcess: mingo },
        null,
        { store: label, what: "view projection (processor from an empty store)", result: projection, unit: "events/s", driver: driverInsert, inProcess: mapWrite },
        { store: label, what: "view.replay (replayStatus.eventsPerSecond)", result: replayed.reported, unit: "events/s", driver: driverInsert, inProcess: mapWrite },
        { store: label, what: "view.replay (wall, incl. switch)", result: replayed.wall, unit: "events/s", driver: driverInsert, inProcess: mapWrite },
        { store: label, what: "raw: structuredClone into a Map (its write)", result: mapWrite, unit: "docs/s", driver: driverInsert, inProcess: mapWrite },
      );
    }

    const took = (performance.now() - startedAt) / 1000;
    console.log(`\n${header}\n`);
    console.log(`Seed: ${events.toLocaleString("en-US")} events appended in ${seedSeconds.toFixed(1)} s (${formatRate(events / seedSeconds)} events/s, append_to_streams, 500 appends/call, 2 calls at once)\n`);
    while (rows[0] === null) rows.shift();
    console.log(table(rows));
    console.log(
      [
        "",
        "Queries: latency per call, sequential; q/s = 1 / mean latency. Writes: n ÷ elapsed time.",
        "÷ raw driver: this row's rate ÷ the FerretDB raw driver's (queries: find + countDocuments; writes: insertMany).",
        "÷ raw in-process: this row's rate ÷ the same work without Taskpool in this process (mingo query; Map write).",
        "p99 of fewer than 100 queries is their maximum.",
        notes.length === 0 ? "Answers: service and raw query gave the same page and total for 5 users per store." : `Answers differ:\n  ${notes.join("\n  ")}`,
        `\nMeasured in ${took.toFixed(0)} s.`,
      ].join("\n"),
    );
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    await cleanup.run();
  }
}

const DEFAULT_TASKS = 5_000;
const DEFAULT_QUERIES = 30;
const DEFAULT_NOTE = "100,000 on FerretDB takes hours (quadratic); BENCH_STORES=embedded BENCH_TASKS=100000 runs the full size in minutes";

function table(rows: (Row | null)[]): string {
  const cells = rows.map((row) => {
    if (!row) return null;
    const r = row.result;
    const latency = Number.isFinite(r.p50Ms);
    return [
      row.store,
      row.what,
      r.n.toLocaleString("en-US"),
      latency ? formatMs(r.p50Ms) : "",
      latency ? formatMs(r.p99Ms) : "",
      `${r.perSecond < 10 ? r.perSecond.toFixed(2) : formatRate(r.perSecond)} ${row.unit}`,
      row.driver ? ratio(r.perSecond, row.driver.perSecond) : "",
      row.inProcess ? ratio(r.perSecond, row.inProcess.perSecond) : "",
    ];
  });
  return formatTable(
    [
      { header: "store" },
      { header: "what" },
      { header: "n", align: "right" },
      { header: "p50 ms", align: "right" },
      { header: "p99 ms", align: "right" },
      { header: "rate", align: "right" },
      { header: "÷ raw driver", align: "right" },
      { header: "÷ raw in-process", align: "right" },
    ],
    cells,
  );
}

/** a ÷ b as "0.62×"; two significant digits below 0.1 ("0.0031×"). */
export function ratio(a: number, b: number): string {
  const r = a / b;
  if (!Number.isFinite(r)) return "-";
  return r < 0.1 ? `${r.toPrecision(2)}×` : formatRatio(a, b);
}

/** The user of query `i` (the same sequence for every client; warm-up queries use other users). */
export function userFor(pop: Population, seed: number, i: number): User {
  const next = random(seed * 104_729 + i + 1_000_003);
  return pick(pop.users, next);
}

/** Service and raw client should give the same page and total for a few users; a difference is reported, not fatal. */
async function checkSame(label: string, broker: ServiceBroker, pop: Population, seed: number, raw: (user: User) => Promise<{ ids: string[]; total: number }>): Promise<string | null> {
  for (let i = 0; i < 5; i++) {
    const user = userFor(pop, seed, 10_000 + i);
    const viaService = (await broker.call("view.tasksForUser", { user, filters: FILTERS, sort: SORT, page: 0, size: PAGE_SIZE })) as { elements: { id: string }[]; totalElementCount: number };
    const direct = await raw(user);
    const ids = viaService.elements.map((e) => e.id);
    if (JSON.stringify(ids) !== JSON.stringify(direct.ids) || viaService.totalElementCount !== direct.total) {
      const at = ids.findIndex((value, index) => value !== direct.ids[index]);
      const note =
        `${label}: the service and the raw query DISAGREE for ${user.username} (${JSON.stringify(user.groups)}): ` +
        `totals ${viaService.totalElementCount} (service) / ${direct.total} (raw), ${ids.length} / ${direct.ids.length} ids, first difference at index ${at}: ` +
        `service ${JSON.stringify(ids.slice(Math.max(0, at - 1), at + 3))}, raw ${JSON.stringify(direct.ids.slice(Math.max(0, at - 1), at + 3))}`;
      console.error(`  ${note}`);
      return note;
    }
  }
  console.error(`  ${label}: service and raw query give the same page and total (5 users checked)`);
  return null;
}

async function rawWrites(
  client: MongoClient,
  database: string,
  name: string,
  documents: Document[],
  write: (collection: Collection<Document>, batch: Document[]) => Promise<unknown>,
): Promise<Timed> {
  const collection = client.db(database).collection(name);
  await collection.drop().catch(() => undefined);
  for (const keys of TASK_INDEXES) await collection.createIndex(keys);
  const t0 = performance.now();
  for (let i = 0; i < documents.length; i += 1000) await write(collection, documents.slice(i, i + 1000));
  const result = throughput(documents.length, (performance.now() - t0) / 1000);
  await collection.drop().catch(() => undefined);
  return result;
}

/** The task documents the view builds from the log: every event read back and projected by the same function. */
async function projectedDocuments(broker: ServiceBroker): Promise<Document[]> {
  const docs = new Map<string, TaskDocument>();
  let after = START_TOKEN;
  for (;;) {
    const page = (await broker.call("eventstore.readAll", { after, limit: 1000 })) as { events: RecordedEvent[]; next: string };
    if (page.events.length === 0) break;
    for (const e of page.events) {
      const event: ViewEvent = { type: e.type, data: e.data, streamId: e.streamId, streamVersion: e.streamVersion, globalPosition: e.globalPosition, recordedAt: e.recordedAt };
      const target = targetOf(event);
      if (target?.collection !== "tasks") continue;
      docs.set(target.id, projectTask(docs.get(target.id) ?? null, event) as TaskDocument);
    }
    after = page.next;
  }
  return [...docs.values()] as unknown as Document[];
}

/** How many tasks each user may see (candidate user, assignee, or a candidate group of theirs), from the seed. */
export function visibleCounts(pop: Population, tasks: number, seed: number): { median: number; min: number; max: number } {
  const members = new Map<string, number[]>();
  pop.users.forEach((u, index) => {
    for (const g of u.groups) members.set(g, [...(members.get(g) ?? []), index]);
  });
  const userIndex = new Map(pop.usernames.map((name, index) => [name, index]));
  const counts = new Int32Array(pop.users.length);
  const next = random(seed * 7919 + 1);
  const seen = new Set<number>();
  for (let i = 0; i < tasks; i++) {
    const task = benchTask(i, next, pop);
    seen.clear();
    for (const g of task.candidateGroups ?? []) for (const u of members.get(g) ?? []) seen.add(u);
    for (const name of [...(task.candidateUsers ?? []), task.assignee]) if (name) seen.add(userIndex.get(name)!);
    for (const u of seen) counts[u]! += 1;
  }
  const sorted = counts.slice().sort();
  return { median: percentile(sorted, 0.5), min: sorted[0] ?? 0, max: sorted[sorted.length - 1] ?? 0 };
}

// Not awaited at the top level: main() imports bench/view-sql.ts, which imports this module, and that import can
// only complete once this module has finished evaluating.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
