// The event store's contract, run twice: on embedded PGlite and on the real PostgreSQL server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { spawn } from "node:child_process";
import EventStoreService from "../../services/eventstore.service.ts";
import { Upcasters } from "../../lib/upcasting.ts";
import { compareTokens } from "../../lib/tokens.ts";
import type { RecordedEvent } from "../../stores/event-store.ts";
import { call, errorOf, dropSchema, startBroker, testDatabaseUrl, unique, type StoreKind } from "../helpers.ts";

const upcasters = new Upcasters().register("Renamed", 1, (data) => ({ fullName: `${data.first} ${data.last}` }));


describe.each<StoreKind>(["pglite", "postgres"])("event store on %s", (kind) => {
  let broker: ServiceBroker;
  const schema = unique("es");

  beforeAll(async () => {
    const settings =
      kind === "pglite"
        ? { pgliteDir: "memory", upcasters, maxEventBytes: 64 * 1024 }
        : { databaseUrl: testDatabaseUrl(), schema, upcasters, maxEventBytes: 64 * 1024 };
    broker = await startBroker([{ ...EventStoreService, settings }]);
  });

  afterAll(async () => {
    await broker?.stop();
    if (kind === "postgres") await dropSchema(schema);
  });

  const append = (params: object) => call(broker, "eventstore.append", params);

  it("appends to a new stream from version 1 and reads it back", async () => {
    const result = await append({
      streamId: "order-1",
      expectedVersion: 0,
      events: [
        { type: "Placed", data: { total: 10 } },
        { type: "Paid", data: { amount: 10 }, metadata: { user: "kermit" } },
      ],
    });
    expect(result.streamVersion).toBe(2);
    expect(result.globalPosition).toBeGreaterThan(0);
    const stream = await call(broker, "eventstore.readStream", { streamId: "order-1" });
    expect(stream.streamVersion).toBe(2);
    expect(stream.events.map((e: RecordedEvent) => [e.streamVersion, e.type, e.data])).toEqual([
      [1, "Placed", { total: 10 }],
      [2, "Paid", { amount: 10 }],
    ]);
    expect(stream.events[1].metadata).toEqual({ user: "kermit" });
    expect(stream.events[1].globalPosition).toBe(result.globalPosition);
    const tail = await call(broker, "eventstore.readStream", { streamId: "order-1", fromVersion: 2 });
    expect(tail.events.map((e: RecordedEvent) => e.type)).toEqual(["Paid"]);
  });

  it("refuses a wrong expected version with CONFLICT carrying the current version, and writes nothing", async () => {
    await append({ streamId: "order-2", expectedVersion: 0, events: [{ type: "Placed", data: {} }] });
    const stale = await errorOf(append({ streamId: "order-2", expectedVersion: 0, events: [{ type: "Placed", data: {} }] }));
    expect(stale.type).toBe("CONFLICT");
    expect(stale.code).toBe(409);
    expect(stale.data).toMatchObject({ streamId: "order-2", expectedVersion: 0, currentVersion: 1 });
    const ahead = await errorOf(append({ streamId: "order-2", expectedVersion: 5, events: [{ type: "Paid", data: {} }] }));
    expect(ahead.data.currentVersion).toBe(1);
    const missing = await errorOf(append({ streamId: "order-never", expectedVersion: 3, events: [{ type: "Paid", data: {} }] }));
    expect(missing.type).toBe("CONFLICT");
    expect(missing.data.currentVersion).toBe(0);
    const stream = await call(broker, "eventstore.readStream", { streamId: "order-2" });
    expect(stream.streamVersion).toBe(1);
    expect(stream.events).toHaveLength(1);
  });

  it("appends without an expected version at whatever version the stream has", async () => {
    const first = await append({ streamId: "log-1", events: [{ type: "Line", data: { n: 1 } }] });
    const second = await append({ streamId: "log-1", events: [{ type: "Line", data: { n: 2 } }, { type: "Line", data: { n: 3 } }] });
    expect([first.streamVersion, second.streamVersion]).toEqual([1, 3]);
  });

  it("is idempotent by commandId: a retried command returns the first result and appends nothing", async () => {
    const params = { streamId: "order-3", expectedVersion: 0, commandId: unique("cmd"), events: [{ type: "Placed", data: { total: 3 } }] };
    const first = await append(params);
    const again = await append(params);
    expect(again).toEqual({ ...first, duplicate: true });
    expect(first.duplicate).toBe(false);
    const stream = await call(broker, "eventstore.readStream", { streamId: "order-3" });
    expect(stream.events).toHaveLength(1);
  });

  it("does not remember the commandId of a command that conflicted, so its retry can succeed", async () => {
    await append({ streamId: "order-4", expectedVersion: 0, events: [{ type: "Placed", data: {} }] });
    const commandId = unique("cmd");
    const conflictErr = await errorOf(append({ streamId: "order-4", expectedVersion: 0, commandId, events: [{ type: "Paid", data: {} }] }));
    expect(conflictErr.type).toBe("CONFLICT");
    const retried = await append({ streamId: "order-4", expectedVersion: 1, commandId, events: [{ type: "Paid", data: {} }] });
    expect(retried).toMatchObject({ streamVersion: 2, duplicate: false });
  });

  it("answers NOT_FOUND for an unknown stream, or an empty stream when asked to", async () => {
    const err = await errorOf(broker.call("eventstore.readStream", { streamId: "nobody" }));
    expect(err.type).toBe("NOT_FOUND");
    expect(err.code).toBe(404);
    const empty = await call(broker, "eventstore.readStream", { streamId: "nobody", allowEmpty: true });
    expect(empty).toEqual({ streamId: "nobody", streamVersion: 0, events: [] });
  });

  it("refuses bad input with typed errors and writes nothing", async () => {
    const tooLarge = await errorOf(append({ streamId: "bad-1", events: [{ type: "Big", data: { blob: "x".repeat(70_000) } }] }));
    expect(tooLarge).toMatchObject({ type: "EVENT_TOO_LARGE", code: 400 });
    expect(tooLarge.data).toMatchObject({ limit: 64 * 1024 });

    const notJson = await errorOf(append({ streamId: "bad-1", events: [{ type: "Odd", data: { when: new Date(), n: 1 } }] }));
    expect(notJson).toMatchObject({ type: "INVALID_EVENT_DATA", code: 400 });
    expect(notJson.data.field).toBe("events[0].data.when");

    const nan = await errorOf(append({ streamId: "bad-1", events: [{ type: "Odd", data: { n: Number.NaN } }] }));
    expect(nan.data.field).toBe("events[0].data.n");

    const invalid = await errorOf(append({ streamId: "", expectedVersion: -1, events: [] }));
    expect(invalid.type).toBe("VALIDATION_ERROR");
    expect(invalid.data.map((p: { field: string }) => p.field).sort()).toEqual(["events", "expectedVersion", "streamId"]);

    const noType = await errorOf(append({ streamId: "bad-1", events: [{ data: {} }] }));
    expect(noType.type).toBe("VALIDATION_ERROR");
    expect(noType.data[0].field).toBe("events[0].type");

    const badToken = await errorOf(broker.call("eventstore.readAll", { after: "yesterday" }));
    expect(badToken.type).toBe("VALIDATION_ERROR");
    expect(badToken.data[0].field).toBe("after");

    const empty = await call(broker, "eventstore.readStream", { streamId: "bad-1", allowEmpty: true });
    expect(empty.streamVersion).toBe(0);
  });

  it("reads the global log after a token, in batches, filtered by type or stream prefix", async () => {
    await append({ streamId: "cat_a-1", events: [{ type: "X", data: { i: 1 } }, { type: "Y", data: { i: 2 } }] });
    await append({ streamId: "cat%a-1", events: [{ type: "X", data: { i: 3 } }] });
    await append({ streamId: "cat_a-2", events: [{ type: "X", data: { i: 4 } }] });

    const everything: RecordedEvent[] = [];
    let after = "0:0";
    for (;;) {
      const batch = await call(broker, "eventstore.readAll", { after, limit: 2 });
      everything.push(...batch.events);
      after = batch.next;
      if (batch.caughtUp) break;
    }
    const head = await call(broker, "eventstore.head");
    expect(everything.length).toBeGreaterThanOrEqual(4);
    expect(everything.at(-1)!.token).toBe(head.token);
    expect(everything.at(-1)!.globalPosition).toBe(head.globalPosition);
    for (let i = 1; i < everything.length; i++) expect(compareTokens(everything[i - 1]!.token, everything[i]!.token)).toBeLessThan(0);

    const prefixed = await call(broker, "eventstore.readAll", { streamPrefix: "cat_a-" });
    expect(prefixed.events.map((e: RecordedEvent) => e.data.i)).toEqual([1, 2, 4]);
    const typed = await call(broker, "eventstore.readAll", { streamPrefix: "cat", eventTypes: ["X"] });
    expect(typed.events.map((e: RecordedEvent) => e.data.i)).toEqual([1, 3, 4]);
  });

  it("upcasts old schema versions on read", async () => {
    await append({ streamId: "person-1", events: [{ type: "Renamed", schemaVersion: 1, data: { first: "Miss", last: "Piggy" } }] });
    await append({ streamId: "person-1", events: [{ type: "Renamed", data: { fullName: "Kermit the Frog" } }] });
    const stream = await call(broker, "eventstore.readStream", { streamId: "person-1" });
    expect(stream.events.map((e: RecordedEvent) => [e.schemaVersion, e.data])).toEqual([
      [2, { fullName: "Miss Piggy" }],
      [2, { fullName: "Kermit the Frog" }],
    ]);
    const log = await call(broker, "eventstore.readAll", { streamPrefix: "person-" });
    expect(log.events[0].data).toEqual({ fullName: "Miss Piggy" });
  });

  it("lets exactly one of many concurrent writers win each version of a stream", async () => {
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => append({ streamId: "race-1", expectedVersion: 0, events: [{ type: "Won", data: { i } }] })),
    );
    expect(attempts.filter((a) => a.status === "fulfilled")).toHaveLength(1);
    const losers = attempts.filter((a): a is PromiseRejectedResult => a.status === "rejected");
    expect(losers.every((l) => l.reason.type === "CONFLICT")).toBe(true);

    // Writers that reload and retry on conflict all get in, with contiguous versions.
    await Promise.all(
      Array.from({ length: 10 }, async (_, writer) => {
        for (;;) {
          const { streamVersion } = await call(broker, "eventstore.readStream", { streamId: "race-1" });
          try {
            await append({ streamId: "race-1", expectedVersion: streamVersion, events: [{ type: "Step", data: { writer } }] });
            return;
          } catch (err: any) {
            if (err.type !== "CONFLICT") throw err;
          }
        }
      }),
    );
    const stream = await call(broker, "eventstore.readStream", { streamId: "race-1" });
    expect(stream.events.map((e: RecordedEvent) => e.streamVersion)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it("groups concurrent appends into shared transactions and still answers each one", async () => {
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => append({ streamId: `group-${i}`, expectedVersion: 0, events: [{ type: "G", data: { i } }] })),
    );
    expect(new Set(results.map((r: any) => r.globalPosition)).size).toBe(64);
    const log = await call(broker, "eventstore.readAll", { streamPrefix: "group-", limit: 100 });
    const transactions = new Set(log.events.map((e: RecordedEvent) => e.transactionId));
    expect(log.events).toHaveLength(64);
    expect(transactions.size).toBeLessThan(64);
  });

  it("keeps one bad append from failing the others of its group", async () => {
    // A stream id that only PostgreSQL refuses (a NUL byte cannot be stored in text).
    const results = await Promise.allSettled([
      append({ streamId: "fine-1", events: [{ type: "F", data: {} }] }),
      append({ streamId: "broken\u0000stream", events: [{ type: "F", data: {} }] }),
      append({ streamId: "fine-2", events: [{ type: "F", data: {} }] }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("orders transactions numerically across a digit boundary (9 before 10, 99999 before 100000)", async () => {
    const knex = (broker.getLocalService("eventstore") as any).database.knex;
    for (const tx of ["9", "10"]) {
      await knex.raw(
        `INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
         VALUES (?::xid8, ?, 1, gen_random_uuid(), 'Old', 1, '{}', '{}')`,
        [tx, `xid-${tx}`],
      );
    }
    const first = await call(broker, "eventstore.readAll", { after: "0:0", limit: 1 });
    const second = await call(broker, "eventstore.readAll", { after: first.next, limit: 1 });
    expect([first.events[0].streamId, second.events[0].streamId]).toEqual(["xid-9", "xid-10"]);
  });

  it("reports head and the token of a position", async () => {
    const appended = await append({ streamId: "head-1", events: [{ type: "H", data: {} }] });
    const head = await call(broker, "eventstore.head");
    expect(head.globalPosition).toBeGreaterThanOrEqual(appended.globalPosition);
    const { token } = await call(broker, "eventstore.tokenOf", { globalPosition: appended.globalPosition });
    expect(token).toMatch(new RegExp(`^\\d+:${appended.globalPosition}$`));
    expect((await call(broker, "eventstore.tokenOf", { globalPosition: 10_000_000 })).token).toBeNull();
  });
});

describe("event store after a crash (PostgreSQL)", () => {
  const schema = unique("crash");
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2, options: `-c search_path=${schema}` });
  });
  afterAll(async () => {
    await pool?.end();
    await dropSchema(schema);
  });

  it("leaves no half-written append when the appending process is killed", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/append-forever.ts"], {
      env: { ...process.env, APPEND_DATABASE_URL: testDatabaseUrl(), APPEND_SCHEMA: schema },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout!.on("data", (chunk) => String(chunk).includes("appending") && resolve()));
    await new Promise((resolve) => setTimeout(resolve, 1500 + Math.random() * 1000));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
    // Every stream holds exactly its version's events, numbered 1..version, and every append has all five.
    const { rows } = await pool.query(`
      SELECT s.stream_id, s.stream_version, count(e.*) AS events, min(e.stream_version) AS first, max(e.stream_version) AS last
        FROM streams s LEFT JOIN events e USING (stream_id) GROUP BY s.stream_id, s.stream_version`);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(Number(row.events)).toBe(Number(row.stream_version));
      expect([Number(row.first), Number(row.last)]).toEqual([1, Number(row.stream_version)]);
      expect(Number(row.stream_version) % 5).toBe(0);
    }
    const orphans = await pool.query(`SELECT count(*) AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.stream_id = e.stream_id)`);
    expect(Number(orphans.rows[0].n)).toBe(0);
  });

  it("rolls an append back entirely when it fails half-way", async () => {
    const broker = await startBroker([{ ...EventStoreService, settings: { databaseUrl: testDatabaseUrl(), schema } }]);
    try {
      // A trigger that fails the third event of one append: the two before it must not stay.
      await pool.query(`
        CREATE FUNCTION fail_third() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.data->>'fail' = 'yes' THEN RAISE EXCEPTION 'disk on fire'; END IF;
          RETURN NEW;
        END $$`);
      await pool.query(`CREATE TRIGGER fail_third BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_third()`);
      const failed = await errorOf(
        call(broker, "eventstore.append", { streamId: "half-1", expectedVersion: 0, events: [{ type: "A", data: {} }, { type: "B", data: {} }, { type: "C", data: { fail: "yes" } }] }),
      );
      expect(String(failed.message)).toMatch(/disk on fire/);
      expect(await call(broker, "eventstore.readStream", { streamId: "half-1", allowEmpty: true })).toMatchObject({ streamVersion: 0, events: [] });
      // Appends grouped with it in one transaction are not taken down with it.
      const results = await Promise.allSettled([
        call(broker, "eventstore.append", { streamId: "half-2", events: [{ type: "A", data: { fail: "yes" } }] }),
        call(broker, "eventstore.append", { streamId: "half-3", events: [{ type: "A", data: {} }] }),
      ]);
      expect(results.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
    } finally {
      await pool.query(`DROP TRIGGER IF EXISTS fail_third ON events`);
      await broker.stop();
    }
  });
});

describe("event store ordering on PostgreSQL (concurrent transactions)", () => {
  let broker: ServiceBroker;
  let pool: pg.Pool;
  const schema = unique("order");

  beforeAll(async () => {
    broker = await startBroker([{ ...EventStoreService, settings: { databaseUrl: testDatabaseUrl(), schema } }]);
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 20, options: `-c search_path=${schema}` });
  });

  afterAll(async () => {
    await pool?.end();
    await broker?.stop();
    await dropSchema(schema);
  });

  async function readEverythingAfter(after: string, limit = 1000): Promise<{ events: RecordedEvent[]; next: string }> {
    const events: RecordedEvent[] = [];
    for (;;) {
      const batch = await call(broker, "eventstore.readAll", { after, limit });
      events.push(...batch.events);
      after = batch.next;
      if (batch.caughtUp) return { events, next: after };
    }
  }

  it("hides a later-numbered event until the slow transaction with the smaller position commits (Usain Bolt)", async () => {
    const start = (await call(broker, "eventstore.head")).token;
    const slow = await pool.connect();
    try {
      await slow.query("BEGIN");
      await slow.query(`SELECT * FROM append_to_streams($1::jsonb)`, [
        JSON.stringify([{ streamId: "slow-1", expectedVersion: 0, commandId: null, events: [{ eventId: crypto.randomUUID(), type: "Slow", schemaVersion: 1, data: {}, metadata: {} }] }]),
      ]);
      const fast = await call(broker, "eventstore.append", { streamId: "fast-1", events: [{ type: "Fast", data: {} }] });
      const seenWhileOpen = await readEverythingAfter(start);
      expect(seenWhileOpen.events.map((e) => e.globalPosition)).not.toContain(fast.globalPosition);
      await slow.query("COMMIT");
      const seen = await readEverythingAfter(seenWhileOpen.next);
      expect(seen.events.map((e) => e.type)).toEqual(["Slow", "Fast"]);
      expect(seen.events[0]!.globalPosition).toBeLessThan(seen.events[1]!.globalPosition);
    } finally {
      slow.release();
    }
  });

  it("delivers the events of one stream in version order even when transactions append to it concurrently", async () => {
    const start = (await call(broker, "eventstore.head")).token;
    // Each transaction appends to several streams at any version, the way group commit batches them.
    await Promise.all(
      Array.from({ length: 16 }, async (_, writer) => {
        for (let i = 0; i < 10; i++) {
          const streams = [`shared-${(writer + i) % 4}`, `shared-${(writer + i + 1) % 4}`, `own-${writer}-${i}`];
          await pool.query(`SELECT * FROM append_to_streams($1::jsonb)`, [
            JSON.stringify(
              streams.map((streamId) => ({
                streamId,
                expectedVersion: null,
                commandId: null,
                events: [{ eventId: crypto.randomUUID(), type: "S", schemaVersion: 1, data: { writer, i }, metadata: {} }],
              })),
            ),
          ]);
        }
      }),
    );
    const seen = await readEverythingAfter(start);
    const lastVersion = new Map<string, number>();
    for (const event of seen.events) {
      expect(event.streamVersion).toBe((lastVersion.get(event.streamId) ?? 0) + 1);
      lastVersion.set(event.streamId, event.streamVersion);
    }
    expect([0, 1, 2, 3].reduce((n, s) => n + (lastVersion.get(`shared-${s}`) ?? 0), 0)).toBe(16 * 10 * 2);
  });

  // The BIGSERIAL pitfall under load: writers in concurrent transactions (some rolled back, some holding
  // their transaction open for a while) and a reader polling all the time. Repeated 20 times.
  it.each(Array.from({ length: 20 }, (_, run) => run + 1))("delivers every committed event exactly once, in token order (run %i of 20)", async (run) => {
    const start = (await call(broker, "eventstore.head")).token;
    const committed = new Set<string>();
    let writing = true;
    const writers = Array.from({ length: 12 }, async (_, writer) => {
      for (let i = 0; i < 25; i++) {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const streamId = `run${run}-w${writer}-${i}`;
          const appended = await client.query(`SELECT * FROM append_to_streams($1::jsonb)`, [
            JSON.stringify([
              {
                streamId,
                expectedVersion: 0,
                commandId: null,
                events: [1, 2].map((n) => ({ eventId: crypto.randomUUID(), type: "E", schemaVersion: 1, data: { writer, i, n }, metadata: {} })),
              },
            ]),
          ]);
          if (Math.random() < 0.3) await new Promise((resolve) => setTimeout(resolve, Math.random() * 15));
          if (Math.random() < 0.15) {
            await client.query("ROLLBACK");
          } else {
            const commit = await client.query("COMMIT");
            expect([appended.rows[0].outcome, commit.command]).toEqual(["appended", "COMMIT"]);
            committed.add(streamId);
          }
        } finally {
          client.release();
        }
      }
    });
    const seen: RecordedEvent[] = [];
    const reader = (async () => {
      let after = start;
      while (writing) {
        const batch = await call(broker, "eventstore.readAll", { after, limit: 7 });
        seen.push(...batch.events);
        after = batch.next;
        if (batch.caughtUp) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      return after;
    })();
    await Promise.all(writers);
    writing = false;
    let after = await reader;
    // Any transaction in the cluster (autovacuum's ANALYZE, say) holds the barrier back for a moment, so "caught
    // up" can come early: keep reading until every committed stream arrived. A skipped event never would.
    const ofRun = () => new Set(seen.filter((e) => e.streamId.startsWith(`run${run}-`) && e.streamVersion === 2).map((e) => e.streamId));
    const deadline = Date.now() + 15_000;
    while (ofRun().size < committed.size && Date.now() < deadline) {
      const rest = await readEverythingAfter(after);
      seen.push(...rest.events);
      after = rest.next;
      if (rest.events.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const missing = [...committed].filter((streamId) => !ofRun().has(streamId));
    if (missing.length > 0) {
      const rows = await pool.query(`SELECT stream_id, stream_version, global_position, transaction_id::text FROM events WHERE stream_id = ANY($1)`, [missing]);
      const tokens = seen.map((e) => e.token);
      throw new Error(`Never delivered: ${JSON.stringify(rows.rows)}; reader ended at ${after}; tokens seen around: ${tokens.slice(-30).join(" ")}`);
    }
    const positions = seen.map((e) => e.globalPosition);
    expect(new Set(positions).size).toBe(positions.length);
    const ours = seen.filter((e) => e.streamId.startsWith(`run${run}-`));
    expect(ours).toHaveLength(committed.size * 2);
    expect(new Set(ours.map((e) => e.streamId))).toEqual(committed);
    expect(ours.filter((e) => e.streamVersion === 1)).toHaveLength(committed.size);
    for (let i = 1; i < seen.length; i++) expect(compareTokens(seen[i - 1]!.token, seen[i]!.token)).toBeLessThan(0);
  });
});
