// Event store benchmark (npm run bench:eventstore): durable single-event appends on the local PostgreSQL at
// several concurrency levels, Taskpool's `eventstore.append` (in-process Moleculer call, group commit) next to
// two baselines on the same server and payload:
//   A  raw `pg`: one-row INSERT per transaction (autocommit) into a table shaped like Taskpool's `events`
//      (jsonb columns, same primary key and indexes), on a pool as large as the concurrency;
//   B  @event-driven-io/emmett-postgresql `appendToStream` (its own database), same pool size;
// and catch-up reads: draining N events with `eventstore.readAll` (1000 per batch) next to a raw keyset SELECT
// over the same rows. Every system writes into a fresh schema or database, dropped at the end.
//
// Environment: BENCH_SECONDS (per level, default 5), BENCH_WARMUP_SECONDS (default 1), BENCH_CONCURRENCY
// (default "1,16,64"), BENCH_READ_EVENTS (default 50000), BENCH_DATABASE_URL (default: TEST_DATABASE_URL or
// `scripts/services.sh env`).
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { ServiceBroker } from "moleculer";
import pg from "pg";
import { getPostgreSQLEventStore } from "@event-driven-io/emmett-postgresql";
import EventStoreService from "../services/eventstore.service.ts";
import { START_TOKEN } from "../lib/tokens.ts";
import {
  Cleanup,
  comparisonTable,
  concurrencyLevels,
  createDatabase,
  createSchema,
  databaseUrl,
  dropDatabase,
  dropSchema,
  envNumber,
  environmentLines,
  eventBytes,
  formatMs,
  formatRate,
  formatRatio,
  formatTable,
  percentile,
  postgresDescription,
  progress,
  runId,
  runLoad,
  taskCreatedEvent,
  type LoadResult,
} from "./lib.ts";

const seconds = envNumber("BENCH_SECONDS", 5);
const warmupSeconds = envNumber("BENCH_WARMUP_SECONDS", 1);
const levels = concurrencyLevels();
const readEvents = Math.floor(envNumber("BENCH_READ_EVENTS", 50_000));
const READ_BATCH = 1000;

const url = databaseUrl();
const id = runId();
const taskpoolSchema = `bench_tp_${id}`;
const rawSchema = `bench_raw_${id}`;
const emmettDatabase = `bench_emmett_${id}`;
const cleanup = new Cleanup();
const startedAt = performance.now();

type System = "taskpool" | "raw" | "emmett";
const SYSTEM_LABELS: Record<System, string> = {
  taskpool: "Taskpool eventstore.append",
  raw: "A raw pg INSERT (1 row/tx)",
  emmett: "B emmett appendToStream",
};
const appends = new Map<string, LoadResult>();
const key = (system: System, concurrency: number) => `${system}/${concurrency}`;

interface ReadResult {
  events: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Reads batches until `total` events have arrived; `batch(after, limit)` returns the events read and the next cursor. */
async function drain<C>(start: C, total: number, batch: (after: C, limit: number) => Promise<{ count: number; next: C }>): Promise<ReadResult> {
  const latencies: number[] = [];
  let after = start;
  let read = 0;
  const t0 = performance.now();
  while (read < total) {
    const b0 = performance.now();
    const { count, next } = await batch(after, Math.min(READ_BATCH, total - read));
    latencies.push(performance.now() - b0);
    if (count === 0) break;
    read += count;
    after = next;
  }
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { events: read, seconds: elapsed, perSecond: read / elapsed, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
}

// ---------------------------------------------------------------------------------------------------------------
// Taskpool: the eventstore service in an in-process broker

async function benchTaskpool(): Promise<{ taskpool: ReadResult; raw: ReadResult }> {
  console.error(`Taskpool (schema ${taskpoolSchema})`);
  const broker = new ServiceBroker({
    namespace: `bench-${id}`,
    nodeID: `bench-${id}`,
    logger: { type: "Console", options: { level: "warn" } },
    skipProcessEventRegistration: true,
  });
  broker.createService({ ...EventStoreService, settings: { databaseUrl: url, schema: taskpoolSchema } });
  cleanup.add(`drop schema ${taskpoolSchema}`, () => dropSchema(url, taskpoolSchema));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await broker.stop();
  };
  cleanup.add("stop the Taskpool broker", stop);
  await broker.start();

  for (const concurrency of levels) {
    const result = await runLoad({
      concurrency,
      seconds,
      warmupSeconds,
      op: (seq) => {
        const streamId = `task-${id}-${seq}`;
        return broker.call("eventstore.append", { streamId, expectedVersion: 0, events: [taskCreatedEvent(streamId)] });
      },
    });
    appends.set(key("taskpool", concurrency), result);
    progress(SYSTEM_LABELS.taskpool, result);
  }

  // Reads: top the log up to N events (appends of 500 events, the product's own write path), then drain it.
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  let readerOpen = true;
  const closeReader = async () => {
    if (!readerOpen) return;
    readerOpen = false;
    await reader.end();
  };
  cleanup.add("close the reader connection", closeReader);
  const count = async () => Number((await reader.query(`SELECT count(*) AS n FROM ${taskpoolSchema}.events`)).rows[0].n);
  let have = await count();
  let topUp = 0;
  while (have < readEvents) {
    const size = Math.min(500, readEvents - have);
    const writes = Array.from({ length: 4 }, () => {
      const streamId = `bulk-${id}-${topUp++}`;
      const events = Array.from({ length: size }, () => taskCreatedEvent(streamId));
      return broker.call("eventstore.append", { streamId, expectedVersion: 0, events });
    });
    await Promise.all(writes);
    have = await count();
  }
  console.error(`  read set: ${have.toLocaleString("en-US")} events in the log, draining the first ${readEvents.toLocaleString("en-US")}`);

  const rawBatch = async (after: { tx: string; gp: string }, limit: number) => {
    const { rows } = await reader.query(
      `SELECT global_position, transaction_id::text AS tx, stream_id, stream_version, event_id, event_type, schema_version,
              data, metadata, recorded_at
         FROM ${taskpoolSchema}.events
        WHERE (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
        ORDER BY transaction_id, global_position
        LIMIT $3`,
      [after.tx, after.gp, limit],
    );
    const last = rows[rows.length - 1];
    return { count: rows.length, next: last ? { tx: last.tx as string, gp: String(last.global_position) } : after };
  };
  const taskpoolBatch = async (after: string, limit: number) => {
    const page = await broker.call<{ events: unknown[]; next: string }, object>("eventstore.readAll", { after, limit });
    return { count: page.events.length, next: page.next };
  };
  // Warm-up: one untimed pass over everything, so that both timed drains find the rows cached.
  await drain({ tx: "0", gp: "0" }, readEvents, rawBatch);
  await drain(START_TOKEN, 5 * READ_BATCH, taskpoolBatch);
  const taskpoolRead = await drain(START_TOKEN, readEvents, taskpoolBatch);
  console.error(`  Taskpool eventstore.readAll: ${formatRate(taskpoolRead.perSecond)} events/s`);
  const rawRead = await drain({ tx: "0", gp: "0" }, readEvents, rawBatch);
  console.error(`  raw pg keyset SELECT: ${formatRate(rawRead.perSecond)} events/s`);
  await closeReader();
  await stop();
  return { taskpool: taskpoolRead, raw: rawRead };
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline A: raw pg

async function benchRaw(): Promise<void> {
  console.error(`A raw pg (schema ${rawSchema})`);
  await createSchema(url, rawSchema);
  cleanup.add(`drop schema ${rawSchema}`, () => dropSchema(url, rawSchema));
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  try {
    // The shape of Taskpool's events table (migrations/20261123000001_event_store.ts): same columns, defaults,
    // primary key and indexes; no streams table, since this baseline is the single-row insert.
    await setup.query(`CREATE SEQUENCE ${rawSchema}.position AS bigint`);
    await setup.query(`
      CREATE TABLE ${rawSchema}.events (
        global_position bigint      NOT NULL DEFAULT nextval('${rawSchema}.position'),
        transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
        stream_id       text        NOT NULL,
        stream_version  bigint      NOT NULL,
        event_id        uuid        NOT NULL,
        event_type      text        NOT NULL,
        schema_version  integer     NOT NULL,
        data            jsonb       NOT NULL,
        metadata        jsonb       NOT NULL,
        command_id      text,
        recorded_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stream_id, stream_version))`);
    await setup.query(`CREATE UNIQUE INDEX ON ${rawSchema}.events (global_position)`);
    await setup.query(`CREATE INDEX ON ${rawSchema}.events (transaction_id, global_position)`);
  } finally {
    await setup.end();
  }
  const insert = `INSERT INTO ${rawSchema}.events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
                  VALUES ($1, 1, $2, $3, 1, $4, $5)`;
  for (const concurrency of levels) {
    const pool = new pg.Pool({ connectionString: url, max: concurrency });
    try {
      const result = await runLoad({
        concurrency,
        seconds,
        warmupSeconds,
        op: (seq) => {
          const streamId = `task-${id}-${seq}`;
          const event = taskCreatedEvent(streamId);
          return pool.query(insert, [streamId, randomUUID(), event.type, JSON.stringify(event.data), JSON.stringify(event.metadata)]);
        },
      });
      appends.set(key("raw", concurrency), result);
      progress(SYSTEM_LABELS.raw, result);
    } finally {
      await pool.end();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline B: emmett-postgresql. Runs last: its driver layer (dumbo) replaces pg's global type parsers for int8
// and jsonb, which would otherwise change how Taskpool's and the raw reader's rows are parsed.

async function benchEmmett(): Promise<void> {
  console.error(`B emmett-postgresql (database ${emmettDatabase})`);
  const emmettUrl = await createDatabase(url, emmettDatabase);
  cleanup.add(`drop database ${emmettDatabase}`, () => dropDatabase(url, emmettDatabase));
  let migrated = false;
  for (const concurrency of levels) {
    const pool = new pg.Pool({ connectionString: emmettUrl, max: concurrency });
    const store = getPostgreSQLEventStore(emmettUrl, {
      connectionOptions: { pool },
      schema: { autoMigration: migrated ? "None" : "CreateOrUpdate" },
    });
    try {
      if (!migrated) {
        await store.schema.migrate();
        migrated = true;
      }
      const result = await runLoad({
        concurrency,
        seconds,
        warmupSeconds,
        op: (seq) => {
          const streamId = `task-${id}-${seq}`;
          const event = taskCreatedEvent(streamId);
          return store.appendToStream(streamId, [event], { expectedStreamVersion: 0n });
        },
      });
      appends.set(key("emmett", concurrency), result);
      progress(SYSTEM_LABELS.emmett, result);
    } finally {
      await store.close();
      await pool.end();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

function appendTable(): string {
  return comparisonTable({
    levels,
    subjects: ["taskpool", "raw", "emmett"] as System[],
    labels: SYSTEM_LABELS,
    result: (system, concurrency) => appends.get(key(system, concurrency)),
    subjectHeader: "system",
    rateHeader: "appends/s",
    ratioHeader: "Taskpool ÷ row",
  });
}

function readTable(reads: { taskpool: ReadResult; raw: ReadResult }): string {
  const row = (label: string, r: ReadResult, ratio: string) => [
    label,
    formatRate(r.events),
    r.seconds.toFixed(2),
    formatRate(r.perSecond),
    formatMs(r.p50Ms),
    formatMs(r.p99Ms),
    ratio,
  ];
  return formatTable(
    [
      { header: "reader (batches of 1000)" },
      { header: "events", align: "right" },
      { header: "seconds", align: "right" },
      { header: "events/s", align: "right" },
      { header: "p50 ms/batch", align: "right" },
      { header: "p99 ms/batch", align: "right" },
      { header: "Taskpool ÷ row", align: "right" },
    ],
    [
      row("Taskpool eventstore.readAll", reads.taskpool, ""),
      row("raw pg keyset SELECT (tx, gp)", reads.raw, formatRatio(reads.taskpool.perSecond, reads.raw.perSecond)),
    ],
  );
}

async function main(): Promise<void> {
  const sample = taskCreatedEvent(`task-${id}-0`);
  const header = [
    "Event store benchmark: durable single-event appends and catch-up reads",
    ...environmentLines({
      database: await postgresDescription(url),
      payload: `one ${sample.type} event per append, ${eventBytes(sample)} B of JSON (data + metadata), one new stream per append`,
      run: `${seconds} s per level after ${warmupSeconds} s warm-up; concurrency ${levels.join(", ")}; reads ${readEvents.toLocaleString("en-US")} events`,
      taskpool: "in-process broker (no transporter), eventstore service defaults (group commit: 4 batches in flight, pool 10)",
    }),
  ].join("\n");
  console.error(header);
  const reads = await benchTaskpool();
  await benchRaw();
  await benchEmmett();
  const took = (performance.now() - startedAt) / 1000;
  console.log(`\n${header}\n`);
  console.log("Appends (1 event, new stream, expected version 0; latency per call)");
  console.log(appendTable());
  console.log(`\nCatch-up read of the same ${readEvents.toLocaleString("en-US")} events, 1 reader`);
  console.log(readTable(reads));
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
