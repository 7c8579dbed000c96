// The SQL part of the view benchmark (npm run bench:view with BENCH_STORES containing postgres and/or pglite; the
// default). Imported by bench/view.bench.ts once it has loaded, never run on its own.
//
// postgres — the PostgreSQL view (VIEW_STORE=postgres) on the local PostgreSQL server, BENCH_TASKS tasks
// (default 100,000) each with one correlated data entry, BENCH_USERS users (1000) in 1–3 of BENCH_GROUPS (100):
//   1. seed: the events appended through the event store's own `append_to_streams` function (fresh schema),
//      1000 appends per call, 2 calls at once;
//   2. projection: a `view` service (store postgres, a fresh view schema) starts on the full log; time until it
//      has applied the last event (events/s); then `view.replay` into generation 2 (events/s, as it reports and
//      by the wall clock); next to a raw multi-row INSERT (1000 rows per statement, one connection, autocommit) of
//      the very rows the projection wrote (documents, and their pairs in the principal table) into tables of the
//      same shape (CREATE TABLE … LIKE … INCLUDING ALL: the
//      same primary key, GIN and sort indexes);
//   3. queries: `view.tasksWithDataEntriesForUser` (page 0 of 50; default sort, and FILTERS + SORT) for random
//      users, sequential, next to the same SQL statements sent straight through `pg` on one connection (set up as
//      the store's: no JIT) — the
//      page SELECT, the count (only when the page is full, as the store does) and the data entries of the page —
//      built by the store's own translator (whereOf, orderByOf) from the filter the service builds; each statement
//      also timed alone; the answers of both compared for 5 users before timing;
//   4. EXPLAIN (ANALYZE, BUFFERS) of the two page queries and their counts (and the data-entry lookup) for one user;
//   5. restart to first answer: the broker (event store + view) stopped and started again in this process; time
//      until `tasksWithDataEntriesForUser` returns the total it returned before;
//   6. RSS of this process (the node: broker, event store, view, plus the benchmark's own state).
// pglite — the embedded case: BENCH_EMBEDDED_TASKS (default 20,000) tasks + data entries in an event-store schema
// on the server; the view on PGlite in a temporary directory (what `npm start` runs), then on the memory store;
// `tasksWithDataEntriesForUser` p50/p99 of both; on PGlite once more after a manual ANALYZE (PGlite runs no
// autovacuum), with the plan of the default page before and after.
//
// Environment (besides those of bench/view.bench.ts): BENCH_TASKS (default 100000), BENCH_EMBEDDED_TASKS (20000),
// BENCH_QUERIES (200 per query and client), BENCH_EVENT_SCHEMA (reuse a seeded event store), BENCH_VIEW_SCHEMA (with
// it: reuse the view projected from it, no projection measured), BENCH_KEEP=1 (leave the seeded event store and the
// projected view for such a run: a 1M seed and projection take over half an hour), BENCH_REPLAY=0 skips the replay (a
// 1M run: it doubles the projection time), BENCH_RAW_ROWS caps the raw INSERT baseline (default: every row; half
// tasks, half data entries).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import ViewService from "../services/view.service.ts";
import { countQuery, findQuery, pageQuery, whereOf, type PostgresViewStore, type Sql } from "../view/stores/postgres-store.ts";
import { and, parseFilters, parseSort } from "../view/filters.ts";
import { dataEntryVisibleTo, live, taskVisibleTo } from "../view/authorization.ts";
import type { User } from "../domain/types.ts";
import { readEnvironment } from "../lib/env.ts";
import { totalOf } from "../view/queries.ts";
import { random } from "../test/fixtures/command-mix.ts";
import { Cleanup, databaseUrl, dropSchema, envNumber, environmentLines, formatMs, formatRate, formatTable, postgresDescription, runId } from "./lib.ts";
import {
  appendAll,
  eventStoreBroker,
  FILTERS,
  PAGE_SIZE,
  population,
  ratio,
  replay,
  sequential,
  SORT,
  taskWithEntryAppends,
  throughput,
  userFor,
  visibleCounts,
  waitForView,
  type Population,
  type Timed,
} from "./view.bench.ts";

interface Variant {
  key: "default" | "filtered";
  label: string;
  filters?: string[];
  sort?: string[];
}

const VARIANTS: Variant[] = [
  { key: "default", label: "default sort (-createTime)" },
  { key: "filtered", label: `filters ${FILTERS.join(" & ")}, sort ${SORT.join(",")}`, filters: FILTERS, sort: SORT },
];

interface Row {
  store: string;
  what: string;
  result: Timed;
  unit: string;
  /** Reference of the ratio column: p99 ÷ its p99 for queries, rate ÷ its rate for writes. */
  reference?: Timed;
}

/** knex's `?` placeholders (and `\?` for a literal ?) as pg's $1, $2, … */
function native(sql: Sql): { text: string; values: unknown[] } {
  let text = "";
  let n = 0;
  for (let i = 0; i < sql.sql.length; i++) {
    const c = sql.sql[i]!;
    if (c === "\\" && sql.sql[i + 1] === "?") {
      text += "?";
      i += 1;
    } else if (c === "?") {
      text += `$${++n}`;
    } else {
      text += c;
    }
  }
  if (n !== sql.bindings.length) throw new Error(`${n} placeholders for ${sql.bindings.length} bindings in ${sql.sql}`);
  return { text, values: sql.bindings as unknown[] };
}

/** The view's count cap (VIEW_COUNT_CAP, default 10,000): the raw SQL counts as the service does. */
const COUNT_CAP = readEnvironment().viewCountCap || undefined;

/**
 * The statement `view.tasksWithDataEntriesForUser` sends for a page and its total, as the store builds it
 * (`combined`), and, for the figures below it, the page's SELECT and the count as they run on their own.
 */
function statements(user: User, variant: Variant, tasks: string): { combined: Sql; page: Sql; count: Sql } {
  const parsed = parseFilters(variant.filters, "taskWithDataEntries");
  if (parsed.dataWhere.length > 0) throw new Error("data.* filters are not part of this benchmark");
  const sort = parseSort(variant.sort, "task", "-createTime");
  const filter = and([live, taskVisibleTo(user), ...parsed.where]);
  return {
    combined: pageQuery(tasks, filter, { sort, limit: PAGE_SIZE, countCap: COUNT_CAP }),
    page: findQuery(tasks, filter, { sort, limit: PAGE_SIZE }),
    count: countQuery(tasks, filter, COUNT_CAP),
  };
}

function entriesStatement(user: User, ids: string[], dataEntries: string): Sql {
  const where = whereOf(and([live, { _id: { $in: ids } }, dataEntryVisibleTo(user)]));
  return { sql: `SELECT doc FROM "${dataEntries}" WHERE ${where.sql}`, bindings: where.bindings };
}

interface RawAnswer {
  ids: string[];
  total: number;
  entries: number;
}

/** The page the way the service gets it, straight through pg: the page with its total, then its data entries. */
async function rawPage(client: pg.Client, user: User, variant: Variant, tables: { tasks: string; dataEntries: string }): Promise<RawAnswer> {
  const { combined } = statements(user, variant, tables.tasks);
  const [row] = (await client.query(native(combined))).rows as { docs: { _id: string; correlationIds: string[] }[]; total: string }[];
  const ids = [...new Set(row!.docs.flatMap((d) => d.correlationIds))];
  const entries = ids.length === 0 ? 0 : (await client.query(native(entriesStatement(user, ids, tables.dataEntries)))).rows.length;
  return { ids: row!.docs.map((d) => d._id), total: totalOf(Number(row!.total), COUNT_CAP).totalElementCount, entries };
}

async function servicePage(broker: ServiceBroker, user: User, variant: Variant): Promise<RawAnswer> {
  const answer = (await broker.call("view.tasksWithDataEntriesForUser", { user, page: 0, size: PAGE_SIZE, filters: variant.filters, sort: variant.sort })) as {
    elements: { task: { id: string }; dataEntries: unknown[] }[];
    totalElementCount: number;
  };
  return { ids: answer.elements.map((e) => e.task.id), total: answer.totalElementCount, entries: answer.elements.reduce((n, e) => n + e.dataEntries.length, 0) };
}

function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

function table(rows: (Row | null)[]): string {
  return formatTable(
    [
      { header: "store" },
      { header: "what" },
      { header: "n", align: "right" },
      { header: "p50 ms", align: "right" },
      { header: "p99 ms", align: "right" },
      { header: "rate", align: "right" },
      { header: "ratio", align: "right" },
    ],
    rows.map((row) => {
      if (!row) return null;
      const r = row.result;
      const latency = Number.isFinite(r.p50Ms);
      const ratioText = !row.reference ? "" : latency ? `p99 ${ratio(r.p99Ms, row.reference.p99Ms)}` : ratio(r.perSecond, row.reference.perSecond);
      return [
        row.store,
        row.what,
        r.n.toLocaleString("en-US"),
        latency ? formatMs(r.p50Ms) : "",
        latency ? formatMs(r.p99Ms) : "",
        `${r.perSecond < 10 ? r.perSecond.toFixed(2) : formatRate(r.perSecond)} ${row.unit}`,
        ratioText,
      ];
    }),
  );
}

/** A broker with the event store on `esSchema` and a view with `settings`. */
function viewBroker(id: string, url: string, esSchema: string, settings: Record<string, unknown>): ServiceBroker {
  const broker = eventStoreBroker(id, url, esSchema);
  broker.createService({ ...ViewService, settings: { mongoUrl: null, dropDelayMs: 1000, ...settings } });
  return broker;
}

async function seed(url: string, schema: string, id: string, tasks: number, pop: Population, seedNumber: number, cleanup: Cleanup, keep = false): Promise<{ events: number; seconds: number }> {
  if (!keep) cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
  const setup = eventStoreBroker(`${id}-setup`, url, schema);
  await setup.start();
  await setup.stop();
  const t0 = performance.now();
  let lastReport = performance.now();
  const events = await appendAll(url, schema, tasks * 2, taskWithEntryAppends(pop, random(seedNumber * 7919 + 1)), {
    batch: 1000,
    concurrency: 2,
    onProgress: (done) => {
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        console.error(`  seeding ${schema}: ${Math.floor(done / 2).toLocaleString("en-US")} / ${tasks.toLocaleString("en-US")} tasks`);
      }
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  console.error(`Seeded ${events.toLocaleString("en-US")} events (${tasks.toLocaleString("en-US")} tasks + data entries) in ${seconds.toFixed(1)} s into ${schema}`);
  return { events, seconds };
}

/**
 * Multi-row INSERTs of the rows of `from` into a new table of the same shape, and of their rows of the visible
 * table (principal, sort key, id) into a copy of it — the same data the view stores; the reads are not timed.
 */
async function rawInsert(client: pg.Client, from: string, into: string, limit = Infinity): Promise<{ rows: number; seconds: number }> {
  await client.query(`DROP TABLE IF EXISTS "${into}"`);
  await client.query(`DROP TABLE IF EXISTS "${into}_visible"`);
  await client.query(`CREATE TABLE "${into}" (LIKE "${from}" INCLUDING ALL)`);
  await client.query(`CREATE TABLE "${into}_visible" (LIKE "${from}_visible" INCLUDING ALL)`);
  let after = "";
  let rows = 0;
  let insertMs = 0;
  const chunk = 1000;
  for (;;) {
    const page = await client.query({ text: `SELECT id, doc::text AS doc, deleted, principals FROM "${from}" WHERE id > $1 ORDER BY id LIMIT ${chunk}`, values: [after] });
    if (page.rows.length === 0 || rows >= limit) break;
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (const row of page.rows as { id: string; doc: string; deleted: boolean; principals: string[] }[]) {
      const n = values.length;
      tuples.push(`($${n + 1}, $${n + 2}::jsonb, $${n + 3}, $${n + 4}::text[])`);
      values.push(row.id, row.doc, row.deleted, row.principals);
    }
    const t0 = performance.now();
    await client.query({ text: `INSERT INTO "${into}" (id, doc, deleted, principals) VALUES ${tuples.join(", ")}`, values });
    insertMs += performance.now() - t0;
    const ids = (page.rows as { id: string }[]).map((row) => row.id);
    // The visible rows as the view holds them (computed, like the documents, before the clock starts).
    const visible = (await client.query({ text: `SELECT principal, id, sort_rank, sort_number, sort_text FROM "${from}_visible" WHERE id = ANY($1::text[])`, values: [ids] })).rows as Record<string, unknown>[];
    const t1 = performance.now();
    for (let i = 0; i < visible.length; i += 1000) {
      const rows = visible.slice(i, i + 1000);
      const tuples = rows.map((_, r) => `($${5 * r + 1}, $${5 * r + 2}, $${5 * r + 3}, $${5 * r + 4}, $${5 * r + 5})`);
      const values = rows.flatMap((row) => [row.principal, row.id, row.sort_rank, row.sort_number, row.sort_text]);
      await client.query({ text: `INSERT INTO "${into}_visible" (principal, id, sort_rank, sort_number, sort_text) VALUES ${tuples.join(", ")}`, values });
    }
    insertMs += performance.now() - t1;
    rows += page.rows.length;
    after = (page.rows[page.rows.length - 1] as { id: string }).id;
  }
  await client.query(`DROP TABLE "${into}"`);
  await client.query(`DROP TABLE "${into}_visible"`);
  return { rows, seconds: insertMs / 1000 };
}

async function explain(client: pg.Client, sql: Sql): Promise<string> {
  const q = native(sql);
  const result = await client.query({ text: `EXPLAIN (ANALYZE, BUFFERS) ${q.text}`, values: q.values });
  return (result.rows as { "QUERY PLAN": string }[]).map((row) => `    ${row["QUERY PLAN"]}`).join("\n");
}

// ---------------------------------------------------------------------------------------------------------------

export async function sqlViewBench(stores: string[]): Promise<void> {
  const startedAt = performance.now();
  const tasks = Math.floor(envNumber("BENCH_TASKS", 100_000));
  const embeddedTasks = Math.floor(envNumber("BENCH_EMBEDDED_TASKS", 20_000));
  const userCount = Math.floor(envNumber("BENCH_USERS", 1000));
  const groupCount = Math.floor(envNumber("BENCH_GROUPS", 100));
  const queries = Math.floor(envNumber("BENCH_QUERIES", 200));
  const seedNumber = Math.floor(envNumber("BENCH_SEED", 1));
  const doReplay = process.env.BENCH_REPLAY !== "0";
  const warmup = Math.max(3, Math.min(20, Math.floor(queries / 10)));
  const url = databaseUrl();
  const id = runId();
  const cleanup = new Cleanup();
  const rows: (Row | null)[] = [];
  const notes: string[] = [];
  const plans: string[] = [];
  const figures: string[] = [];
  const pop = population(userCount, groupCount, random(seedNumber));
  const users = (i: number) => userFor(pop, seedNumber, i);

  try {
    const header = [
      "View benchmark (SQL stores): view.tasksWithDataEntriesForUser, projection, replay and restart on the PostgreSQL view; the embedded view on PGlite next to the memory store",
      ...environmentLines({
        postgres: await postgresDescription(url),
        sizes:
          `BENCH_TASKS=${tasks.toLocaleString("en-US")} (postgres), BENCH_EMBEDDED_TASKS=${embeddedTasks.toLocaleString("en-US")} (pglite, memory), each task with 1 correlated data entry; ` +
          `BENCH_USERS=${userCount}, BENCH_GROUPS=${groupCount}, BENCH_QUERIES=${queries} (+${warmup} warm-up) per query and client, BENCH_STORES=${stores.join(",")}`,
        data: "TaskCreated: 1–3 candidate groups, 0–3 candidate users, 30 % assigned, createTime over 2026, payload {amount, category, currency, customer, urgent}; DataEntryCreated authorized to the task's groups",
        query: `page 0 of ${PAGE_SIZE} for a random user each (sequential): default sort, and filters ${JSON.stringify(FILTERS)} + sort ${JSON.stringify(SORT)}`,
        broker: "in-process (no transporter): eventstore + view, log level warn",
      }),
    ].join("\n");
    console.error(header);

    if (stores.includes("postgres")) {
      const visible = visibleCounts(pop, tasks, seedNumber);
      figures.push(`postgres: tasks visible per user: median ${visible.median.toLocaleString("en-US")}, min ${visible.min.toLocaleString("en-US")}, max ${visible.max.toLocaleString("en-US")}`);
      // BENCH_EVENT_SCHEMA: an event store schema a run of the same BENCH_TASKS, BENCH_SEED, BENCH_USERS and
      // BENCH_GROUPS seeded before (kept, not dropped): a 1M run spends ten minutes seeding.
      const reused = process.env.BENCH_EVENT_SCHEMA?.trim();
      const reusedView = reused ? process.env.BENCH_VIEW_SCHEMA?.trim() : undefined;
      const keep = process.env.BENCH_KEEP === "1";
      const esSchema = reused || `bench_view_${id}_es`;
      const viewSchema = reusedView || `bench_view_${id}_view`;
      const seeded = reused ? { events: 2 * tasks, seconds: 0 } : await seed(url, esSchema, id, tasks, pop, seedNumber, cleanup, keep);
      if (keep) figures.push(`postgres: kept for a later run (BENCH_KEEP=1): BENCH_EVENT_SCHEMA=${esSchema} BENCH_VIEW_SCHEMA=${viewSchema}`);
      figures.push(
        reused
          ? `postgres: ${seeded.events.toLocaleString("en-US")} events seeded by an earlier run (BENCH_EVENT_SCHEMA=${reused})`
          : `postgres: seed ${seeded.events.toLocaleString("en-US")} events in ${seeded.seconds.toFixed(1)} s (${formatRate(seeded.events / seeded.seconds)} events/s through append_to_streams)`,
      );
      if (!keep && !reusedView) cleanup.add(`drop schema ${viewSchema}`, () => dropSchema(url, viewSchema));
      const settings = { store: "postgres", databaseUrl: url, schema: viewSchema };
      let broker = viewBroker(`${id}-pg`, url, esSchema, settings);
      let stopped = false;
      const stop = async () => {
        if (!stopped) {
          stopped = true;
          await broker.stop();
        }
      };
      cleanup.add("stop the postgres view broker", () => stop());
      await broker.start();
      console.error(`postgres: ${reusedView ? "catching up on" : "projecting"} ${seeded.events.toLocaleString("en-US")} events into schema ${viewSchema}`);
      const t0 = performance.now();
      await waitForView(broker, "postgres projection");
      const projection = throughput(seeded.events, (performance.now() - t0) / 1000);
      console.error(`  postgres projection: ${formatRate(projection.perSecond)} events/s (${projection.seconds.toFixed(1)} s)`);

      const client = new pg.Client({ connectionString: url, options: `-c search_path=${viewSchema} -c jit=off` });
      await client.connect();
      cleanup.add("close the pg client", () => client.end());
      await client.query("ANALYZE");

      const metaRow = async () => JSON.stringify((await client.query(`SELECT doc FROM view_meta WHERE id = 'view'`)).rows[0]?.doc ?? null);

      // ---- restart to first answer: the broker stopped and started again in this process ----
      const probeUser = users(0);
      const restart = async (nodeId: string, timeoutMs: number): Promise<{ ok: boolean; ms: number; startMs: number; attempts: number; total: number; problem: string }> => {
        const expected = await servicePage(broker, probeUser, VARIANTS[0]!);
        await stop();
        const r0 = performance.now();
        broker = viewBroker(nodeId, url, esSchema, settings);
        stopped = false;
        await broker.start();
        const startMs = performance.now() - r0;
        let problem = "";
        let attempts = 0;
        for (;;) {
          attempts += 1;
          try {
            const answer = await servicePage(broker, probeUser, VARIANTS[0]!);
            if (answer.total === expected.total && JSON.stringify(answer.ids) === JSON.stringify(expected.ids)) {
              return { ok: true, ms: performance.now() - r0, startMs, attempts, total: expected.total, problem };
            }
            problem = `${probeUser.username} answered total ${answer.total} (expected ${expected.total}), ${answer.ids.length} ids`;
          } catch (err) {
            problem = (err as Error).message;
          }
          if (performance.now() - r0 > timeoutMs) return { ok: false, ms: performance.now() - r0, startMs, attempts, total: expected.total, problem };
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      const restarted = await restart(`${id}-pg2`, 60_000);
      figures.push(
        restarted.ok
          ? `postgres: restart to first correct answer ${formatMs(restarted.ms)} ms (broker.start() resolved after ${formatMs(restarted.startMs)} ms; ${restarted.attempts} attempt(s); ` +
              `${probeUser.username}: total ${restarted.total.toLocaleString("en-US")}) — eventstore + view broker stopped and started again in this process`
          : `postgres: restart: NO correct answer within 60 s — ${restarted.problem}`,
      );

      let replayed: { wall: Timed; reported: Timed } | null = null;
      if (doReplay) {
        console.error("  postgres: view.replay into generation 2");
        replayed = await replay(broker, "postgres");
        console.error(`  postgres replay: ${formatRate(replayed.reported.perSecond)} events/s reported, ${replayed.wall.seconds.toFixed(1)} s wall`);
        await new Promise((r) => setTimeout(r, 1500)); // the old generation is dropped 1 s after the switch
        await client.query("ANALYZE");
        figures.push(`postgres: view_meta after the replay (no event since): ${await metaRow()}; in the service: generation ${((await broker.call("view.position")) as { generation: number }).generation}`);
      }
      const generation = ((await broker.call("view.position")) as { generation: number }).generation;
      const tables = { tasks: `tasks_g${generation}`, dataEntries: `data_entries_g${generation}` };
      const sizes = (await client.query(
        `SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) AS total, pg_size_pretty(pg_relation_size(oid)) AS heap FROM pg_class WHERE oid IN (to_regclass($1), to_regclass($2)) ORDER BY relname`,
        [`"${tables.tasks}"`, `"${tables.dataEntries}"`],
      )).rows as { relname: string; total: string; heap: string }[];
      figures.push(`postgres: table sizes ${sizes.map((s) => `${s.relname} ${s.total} (heap ${s.heap})`).join(", ")}`);

      console.error("  postgres: raw multi-row INSERT of the same rows");
      const rawLimit = envNumber("BENCH_RAW_ROWS", Infinity) / 2;
      const rawTasks = await rawInsert(client, tables.tasks, "raw_tasks", rawLimit);
      const rawEntries = await rawInsert(client, tables.dataEntries, "raw_data_entries", rawLimit);
      const raw = throughput(rawTasks.rows + rawEntries.rows, rawTasks.seconds + rawEntries.seconds);
      console.error(`  raw INSERT: ${formatRate(raw.perSecond)} rows/s`);

      // ---- queries ----
      const queryRows: (Row | null)[] = [];
      for (const variant of VARIANTS) {
        for (let i = 0; i < 5; i++) {
          const user = users(100_000 + i);
          const a = await servicePage(broker, user, variant);
          const b = await rawPage(client, user, variant, tables);
          if (JSON.stringify(a) !== JSON.stringify(b)) {
            const note = `postgres ${variant.key}: service and raw SQL DISAGREE for ${user.username}: total ${a.total}/${b.total}, entries ${a.entries}/${b.entries}, ids equal ${JSON.stringify(a.ids) === JSON.stringify(b.ids)}`;
            console.error(`  ${note}`);
            notes.push(note);
            break;
          }
        }
        const service = await sequential(queries, warmup, (i) => servicePage(broker, users(i), variant));
        console.error(`  postgres ${variant.key} view.tasksWithDataEntriesForUser: p50 ${formatMs(service.p50Ms)} ms, p99 ${formatMs(service.p99Ms)} ms`);
        const direct = await sequential(queries, warmup, (i) => rawPage(client, users(i), variant, tables));
        console.error(`  postgres ${variant.key} raw pg: p50 ${formatMs(direct.p50Ms)} ms, p99 ${formatMs(direct.p99Ms)} ms`);
        const combinedOnly = await sequential(queries, warmup, (i) => client.query(native(statements(users(i), variant, tables.tasks).combined)));
        const pageOnly = await sequential(queries, warmup, (i) => client.query(native(statements(users(i), variant, tables.tasks).page)));
        const countOnly = await sequential(queries, warmup, (i) => client.query(native(statements(users(i), variant, tables.tasks).count)));
        const entryIds = async (i: number) => {
          const user = users(i);
          const docs = (await client.query(native(statements(user, variant, tables.tasks).page))).rows as { doc: { correlationIds: string[] } }[];
          return { user, ids: [...new Set(docs.flatMap((d) => d.doc.correlationIds))] };
        };
        const prepared: { user: User; ids: string[] }[] = [];
        for (let k = 0; k < queries + warmup; k++) prepared.push(await entryIds(k < warmup ? -1 - k : k - warmup));
        const entriesOnly = await sequential(queries, warmup, (i) => {
          const { user, ids } = prepared[i < 0 ? -1 - i : i + warmup]!;
          return client.query(native(entriesStatement(user, ids, tables.dataEntries)));
        });
        if (queryRows.length > 0) queryRows.push(null);
        queryRows.push(
          { store: "postgres", what: `view.tasksWithDataEntriesForUser, ${variant.label}`, result: service, unit: "q/s", reference: direct },
          { store: "postgres", what: "raw pg, same SQL: page with its total (one statement) + data entries", result: direct, unit: "q/s", reference: direct },
          { store: "postgres", what: "  raw pg: the page with its total alone", result: combinedOnly, unit: "q/s" },
          { store: "postgres", what: "  raw pg: the page SELECT alone (findQuery, without the total)", result: pageOnly, unit: "q/s" },
          { store: "postgres", what: "  raw pg: the count alone (countQuery, capped as the service counts)", result: countOnly, unit: "q/s" },
          { store: "postgres", what: "  raw pg: the page's data entries alone", result: entriesOnly, unit: "q/s" },
        );
      }
      const rssAfterQueries = rssMb();

      // ---- plans, for one user ----
      const planUser = users(0);
      for (const variant of VARIANTS) {
        const { combined, page, count } = statements(planUser, variant, tables.tasks);
        const total = Number((await client.query(native(count))).rows[0].n);
        plans.push(`EXPLAIN (ANALYZE, BUFFERS) page with its total (the statement the store sends), ${variant.label} — ${planUser.username} (groups ${planUser.groups.join(", ")}), ${total.toLocaleString("en-US")} tasks match:\n${await explain(client, combined)}`);
        plans.push(`EXPLAIN (ANALYZE, BUFFERS) its page SELECT alone, ${variant.label}:\n${await explain(client, page)}`);
        plans.push(`EXPLAIN (ANALYZE, BUFFERS) its count alone, ${variant.label}:\n${await explain(client, count)}`);
        if (variant.key === "default") {
          const docs = (await client.query(native(page))).rows as { doc: { correlationIds: string[] } }[];
          const ids = [...new Set(docs.flatMap((d) => d.doc.correlationIds))];
          plans.push(`EXPLAIN (ANALYZE, BUFFERS) the page's data entries (${ids.length} ids):\n${await explain(client, entriesStatement(planUser, ids, tables.dataEntries))}`);
        }
      }

      figures.push(`postgres: RSS of this process (broker + event store + view + benchmark state): ${rssAfterQueries.toFixed(0)} MB after the queries, ${rssMb().toFixed(0)} MB at the end`);
      if (doReplay) {
        // Restarted after the replay, with no event since: the node must answer from generation 2.
        const after = await restart(`${id}-pg3`, 20_000);
        figures.push(
          after.ok
            ? `postgres: restart after the replay: first correct answer after ${formatMs(after.ms)} ms`
            : `postgres: restart after the replay (no event since the switch): NO correct answer within 20 s — ${after.problem}; view_meta row: ${await metaRow()}`,
        );
      }
      await stop();

      rows.push(
        reusedView ? null : { store: "postgres", what: "view projection (processor from an empty store)", result: projection, unit: "events/s", reference: raw },
        ...(replayed
          ? [
              { store: "postgres", what: "view.replay (replayStatus.eventsPerSecond)", result: replayed.reported, unit: "events/s", reference: raw },
              { store: "postgres", what: "view.replay (wall, incl. tables, indexes, switch)", result: replayed.wall, unit: "events/s", reference: raw },
            ]
          : []),
        { store: "postgres", what: `raw multi-row INSERT of ${raw.n < seeded.events ? "the first " : "the same "}${raw.n.toLocaleString("en-US")} rows (1000/statement)`, result: raw, unit: "rows/s", reference: raw },
        null,
        ...queryRows,
      );
    }

    if (stores.includes("pglite")) {
      const esSchema = `bench_view_${id}_es_embedded`;
      const seeded = await seed(url, esSchema, `${id}-e`, embeddedTasks, pop, seedNumber + 1, cleanup);
      const results: Record<string, Record<string, Timed>> = {};
      for (const kind of ["pglite", "memory"] as const) {
        const dir = kind === "pglite" ? mkdtempSync(join(tmpdir(), "taskpool-bench-pglite-")) : null;
        if (dir) cleanup.add(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
        const broker = viewBroker(`${id}-${kind}`, url, esSchema, kind === "pglite" ? { store: "postgres", databaseUrl: null, pgliteDir: join(dir!, "pglite"), schema: "view" } : { store: "memory" });
        let stopped = false;
        const stop = async () => {
          if (!stopped) {
            stopped = true;
            await broker.stop();
          }
        };
        cleanup.add(`stop the ${kind} view broker`, () => stop());
        await broker.start();
        const t0 = performance.now();
        await waitForView(broker, `${kind} projection`);
        const projection = throughput(seeded.events, (performance.now() - t0) / 1000);
        console.error(`  ${kind} projection: ${formatRate(projection.perSecond)} events/s (${projection.seconds.toFixed(1)} s)`);
        results[kind] = { projection };
        for (const variant of VARIANTS) {
          const service = await sequential(queries, warmup, (i) => servicePage(broker, users(i), variant));
          results[kind]![variant.key] = service;
          console.error(`  ${kind} ${variant.key} view.tasksWithDataEntriesForUser: p50 ${formatMs(service.p50Ms)} ms, p99 ${formatMs(service.p99Ms)} ms`);
        }
        figures.push(`${kind}: RSS of this process after its queries ${rssMb().toFixed(0)} MB`);
        if (kind === "pglite") {
          // PGlite runs no autovacuum: the tables have never been analysed. The plan as projected, then after ANALYZE.
          const store = (broker.getLocalService("view") as unknown as { store: PostgresViewStore }).store;
          const planUser = users(0);
          const stats = (await store.knex.raw(`SELECT relname, n_live_tup, last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE relname IN ('tasks_g1', 'data_entries_g1') ORDER BY relname`)).rows;
          figures.push(`pglite: pg_stat_user_tables before ANALYZE: ${JSON.stringify(stats)}`);
          const explainPage = async () => {
            const parsed = parseFilters(undefined, "taskWithDataEntries");
            const filter = and([live, taskVisibleTo(planUser), ...parsed.where]);
            return (await store.explain("tasks_g1", filter, { sort: parseSort(undefined, "task", "-createTime"), limit: PAGE_SIZE })).replace(/^/gm, "    ");
          };
          plans.push(`pglite: EXPLAIN (ANALYZE, BUFFERS) page, default sort, ${planUser.username}, as projected (never analysed):\n${await explainPage()}`);
          await store.knex.raw("ANALYZE");
          plans.push(`pglite: the same after ANALYZE:\n${await explainPage()}`);
          for (const variant of VARIANTS) {
            const service = await sequential(queries, warmup, (i) => servicePage(broker, users(i), variant));
            results[kind]![`${variant.key}-analyzed`] = service;
            console.error(`  pglite after ANALYZE ${variant.key}: p50 ${formatMs(service.p50Ms)} ms, p99 ${formatMs(service.p99Ms)} ms`);
          }
        }
        await stop();
      }
      if (rows.length > 0) rows.push(null);
      for (const variant of VARIANTS) {
        rows.push(
          { store: "pglite", what: `view.tasksWithDataEntriesForUser, ${variant.label}`, result: results.pglite![variant.key]!, unit: "q/s", reference: results.memory![variant.key]! },
          { store: "pglite", what: `  the same after a manual ANALYZE (PGlite has no autovacuum)`, result: results.pglite![`${variant.key}-analyzed`]!, unit: "q/s", reference: results.memory![variant.key]! },
          { store: "memory", what: `view.tasksWithDataEntriesForUser, ${variant.label}`, result: results.memory![variant.key]!, unit: "q/s", reference: results.memory![variant.key]! },
        );
      }
      rows.push(
        { store: "pglite", what: "view projection (processor from an empty store)", result: results.pglite!.projection!, unit: "events/s", reference: results.memory!.projection! },
        { store: "memory", what: "view projection (processor from an empty store)", result: results.memory!.projection!, unit: "events/s", reference: results.memory!.projection! },
      );
      figures.push(`pglite/memory: ${embeddedTasks.toLocaleString("en-US")} tasks + data entries; seed ${seeded.events.toLocaleString("en-US")} events in ${seeded.seconds.toFixed(1)} s`);
    }

    const took = (performance.now() - startedAt) / 1000;
    console.log(`\n${header}\n`);
    while (rows[0] === null) rows.shift();
    console.log(table(rows));
    console.log(
      [
        "",
        "Queries: latency per call, sequential; q/s = 1 / mean latency. Writes: n ÷ elapsed time (raw INSERT: the INSERT statements only).",
        "ratio: queries p99 ÷ the raw pg p99 of the same variant (pglite/memory rows: ÷ the memory store's); writes: rate ÷ the raw INSERT's (pglite: ÷ memory's).",
        `p99 of fewer than 100 queries is their maximum.`,
        notes.length === 0 ? "Answers: service and raw SQL gave the same page, total and data entries for 5 users per variant." : `Answers differ:\n  ${notes.join("\n  ")}`,
        "",
        ...figures,
        "",
        ...plans.flatMap((p) => [p, ""]),
        `Measured in ${took.toFixed(0)} s.`,
      ].join("\n"),
    );
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    await cleanup.run();
  }
}

