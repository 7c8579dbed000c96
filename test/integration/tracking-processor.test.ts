// Tracking processors (mixins/tracking-processor.mixin.ts): catch-up in batches, resume from the stored token,
// live wake-ups with a poll as fallback, one lease holder in the cluster with takeover when it dies, retries then
// park or stop on failing events, and reset with replay.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import pg from "pg";
import EventStoreService from "../../services/eventstore.service.ts";
import { TrackingProcessorMixin, type TrackingProcessorOptions } from "../../mixins/tracking-processor.mixin.ts";
import type { RecordedEvent } from "../../stores/event-store.ts";
import { call, dropSchema, spawnNode, startBroker, testDatabaseUrl, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";

interface Handled {
  events: RecordedEvent[];
  replaying: boolean[];
}

function processor(name: string, options: Partial<TrackingProcessorOptions>, handled: Handled, fail?: (e: RecordedEvent) => boolean): ServiceSchema {
  return {
    name,
    mixins: [TrackingProcessorMixin({ processor: name, pollIntervalMs: 60_000, leaseMs: 2000, batchSize: 100, retryDelayMs: 10, ...options })],
    methods: {
      async handleEvents(events: RecordedEvent[], context: { replaying: boolean }) {
        const bad = fail ? events.find(fail) : undefined;
        if (bad) throw new Error(`cannot handle ${bad.type}`);
        handled.events.push(...events);
        handled.replaying.push(...events.map(() => context.replaying));
      },
    },
  };
}

async function appendMany(broker: ServiceBroker, prefix: string, count: number, type = "Counted"): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i += 100) {
    const results = await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, (_, j) => call(broker, "eventstore.append", { streamId: `${prefix}-${i + j}`, events: [{ type, data: { n: i + j } }] })),
    );
    last = Math.max(last, ...results.map((r) => r.globalPosition));
  }
  return last;
}

describe("tracking processor in one process", () => {
  let broker: ServiceBroker;
  beforeAll(async () => {
    broker = await startBroker([{ ...EventStoreService, settings: { pgliteDir: "memory" } }]);
  });
  afterAll(() => broker?.stop());

  const extra: string[] = [];
  afterEach(async () => {
    for (const name of extra.splice(0)) {
      const service = broker.getLocalService(name);
      if (service) await broker.destroyService(service);
    }
  });
  async function run(schema: ServiceSchema) {
    extra.push(schema.name);
    return broker.createService(schema) as any;
  }

  it("catches up in batches, then resumes from its stored token after a restart", async () => {
    await appendMany(broker, "catchup", 250);
    const first: Handled = { events: [], replaying: [] };
    await run(processor("p1", { eventTypes: ["Counted"] }, first));
    await waitFor(() => first.events.length >= 250, 20_000);
    expect(first.events.map((e) => Number(e.data.n)).sort((a, b) => a - b)).toEqual(Array.from({ length: 250 }, (_, i) => i));
    const state = await call(broker, "p1.processorState");
    expect(state).toMatchObject({ leased: true, status: "live", eventsHandled: 250 });
    await broker.destroyService(broker.getLocalService("p1")!);
    extra.length = 0;

    await appendMany(broker, "catchup-more", 30);
    const second: Handled = { events: [], replaying: [] };
    await run(processor("p1", { eventTypes: ["Counted"] }, second));
    await waitFor(() => second.events.length >= 30, 20_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(second.events.map((e) => e.streamId).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `catchup-more-${i}`).sort());
  });

  it("wakes up on eventstore.appended, and a lost wake-up costs only the poll interval", async () => {
    const handled: Handled = { events: [], replaying: [] };
    const service = await run(processor("p2", { eventTypes: ["Live"], pollIntervalMs: 60_000 }, handled));
    await waitFor(async () => (await call(broker, "p2.processorState")).status === "live", 10_000);
    // With a one-minute poll, only the wake-up can deliver this quickly.
    await call(broker, "eventstore.append", { streamId: "live-1", events: [{ type: "Live", data: {} }] });
    await waitFor(() => handled.events.length === 1, 10_000);

    // Written behind the service's back: no wake-up is broadcast.
    const knex = (broker.getLocalService("eventstore") as any).database.knex;
    await knex.raw(`SELECT * FROM append_to_streams(?::jsonb)`, [
      JSON.stringify([{ streamId: "live-2", expectedVersion: 0, commandId: null, events: [{ eventId: crypto.randomUUID(), type: "Live", schemaVersion: 1, data: {}, metadata: {} }] }]),
    ]);
    await new Promise((r) => setTimeout(r, 500));
    expect(handled.events).toHaveLength(1);
    service.processorSettings.pollIntervalMs = 200; // the fallback poll now comes soon
    service.wakeProcessor(); // (ends the current one-minute sleep so that the shorter poll applies)
    await waitFor(() => handled.events.length === 2, 10_000);
    expect(handled.events[1]!.streamId).toBe("live-2");
  });

  it("retries a failing event, then parks it and goes on", async () => {
    await appendMany(broker, "park", 5, "Parkable");
    await call(broker, "eventstore.append", { streamId: "park-poison", events: [{ type: "Parkable", data: { poison: true } }] });
    await appendMany(broker, "park-after", 3, "Parkable");
    const handled: Handled = { events: [], replaying: [] };
    let attempts = 0;
    await run(
      processor("p3", { eventTypes: ["Parkable"], onError: "park", attempts: 3 }, handled, (e) => {
        if (e.data.poison) attempts += 1;
        return e.data.poison === true;
      }),
    );
    await waitFor(() => handled.events.length === 8, 20_000);
    expect(handled.events.map((e) => e.streamId)).not.toContain("park-poison");
    const parked = await call(broker, "eventstore.parkedEvents", { processor: "p3" });
    expect(parked).toMatchObject([{ streamId: "park-poison", type: "Parkable", attempts: 3, error: "cannot handle Parkable" }]);
    expect(attempts).toBeGreaterThanOrEqual(3);
  });

  it("stops on a failing event when so configured, keeps what came before, and restarts once fixed", async () => {
    await appendMany(broker, "stop-before", 4, "Stoppable");
    await call(broker, "eventstore.append", { streamId: "stop-poison", events: [{ type: "Stoppable", data: { poison: true } }] });
    await appendMany(broker, "stop-after", 2, "Stoppable");
    const handled: Handled = { events: [], replaying: [] };
    let broken = true;
    await run(processor("p4", { eventTypes: ["Stoppable"], onError: "stop", attempts: 2 }, handled, (e) => broken && e.data.poison === true));
    await waitFor(async () => (await call(broker, "p4.processorState")).status === "failed", 20_000);
    expect(handled.events.map((e) => e.streamId)).toEqual(["stop-before-0", "stop-before-1", "stop-before-2", "stop-before-3"]);
    const row = (await call<any[]>(broker, "eventstore.processors")).find((p) => p.name === "p4");
    expect(row).toMatchObject({ status: "failed", owner: null });
    expect(row.lastError).toMatch(/stop-poison/);

    broken = false;
    await call(broker, "p4.restartProcessor");
    await waitFor(() => handled.events.length === 7, 20_000);
    expect(handled.events.slice(4).map((e) => e.streamId)).toEqual(["stop-poison", "stop-after-0", "stop-after-1"]);
  });

  it("moves a filtered processor over the events it skips: idle, it is at the end of the log with lag 0", async () => {
    await appendMany(broker, "skipped", 120, "NotForMe");
    const handled: Handled = { events: [], replaying: [] };
    const service = await run(processor("filtered", { eventTypes: ["OnlyThis"], pollIntervalMs: 100 }, handled));
    const head = await call(broker, "eventstore.head");
    await waitFor(() => service.processor.token === head.token, 10_000);
    const rows = await call(broker, "eventstore.processors");
    expect(rows.find((row: { name: string }) => row.name === "filtered")).toMatchObject({ token: head.token, lag: 0 });
    expect(handled.events).toHaveLength(0);
    // What it does read still reaches it, and it stays at the end.
    const wanted = await appendMany(broker, "wanted", 3, "OnlyThis");
    await waitFor(() => handled.events.length === 3, 10_000);
    expect(handled.events.map((e) => e.globalPosition).at(-1)).toBe(wanted);
  });

  it("reads batches bounded in bytes: large events come in small batches, one larger than the bound alone", async () => {
    const big = "x".repeat(300 * 1024);
    const first = await call(broker, "eventstore.append", { streamId: "bytes-1", events: [{ type: "Big", data: { big } }, { type: "Small", data: { n: 1 } }, { type: "Big", data: { big } }] });
    const after = await call(broker, "eventstore.tokenOf", { globalPosition: first.globalPosition - 3 });
    const page = await call(broker, "eventstore.readAll", { after: after.token, limit: 100, streamPrefix: "bytes-" });
    // 256 KiB per reply by default: the first event exceeds it and comes alone.
    expect(page.events.map((e: RecordedEvent) => e.type)).toEqual(["Big"]);
    expect(page.caughtUp).toBe(false);
    const next = await call(broker, "eventstore.readAll", { after: page.next, limit: 100, streamPrefix: "bytes-" });
    expect(next.events.map((e: RecordedEvent) => e.type)).toEqual(["Small"]);
    const last = await call(broker, "eventstore.readAll", { after: next.next, limit: 100, streamPrefix: "bytes-" });
    expect(last.events.map((e: RecordedEvent) => e.type)).toEqual(["Big"]);
    expect(last.caughtUp).toBe(true);
  });

  it("resets to the start of the log and handles everything again, telling replayed events apart", async () => {
    await appendMany(broker, "reset", 10, "Resettable");
    const handled: Handled = { events: [], replaying: [] };
    await run(processor("p5", { eventTypes: ["Resettable"] }, handled));
    await waitFor(() => handled.events.length === 10, 10_000);
    await call(broker, "p5.resetProcessor");
    await call(broker, "eventstore.append", { streamId: "reset-new", events: [{ type: "Resettable", data: {} }] });
    await waitFor(() => handled.events.length === 21, 10_000);
    expect(handled.replaying.slice(0, 10).every((r) => !r)).toBe(true);
    expect(handled.replaying.slice(10, 20).every((r) => r)).toBe(true);
    expect(handled.replaying[20]).toBe(false);
    expect(handled.events[20]!.streamId).toBe("reset-new");
  });
});

describe("tracking processor lease across processes (PostgreSQL, NATS)", () => {
  const schema = unique("lease");
  const namespace = unique("lease");
  const table = unique("recorded");
  let broker: ServiceBroker;
  let child: NodeProcess | undefined;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
    await pool.query(`CREATE TABLE ${table} (global_position bigint NOT NULL, handled_by text NOT NULL)`);
  });
  afterAll(async () => {
    await child?.kill();
    await broker?.stop();
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
    await dropSchema(schema);
  });

  it("runs one instance at a time and lets another take over within the lease when the holder dies", async () => {
    // The event store and instance "second" live here; instance "first" in a child process.
    broker = await startBroker([{ ...EventStoreService, settings: { databaseUrl: testDatabaseUrl(), schema } }], {
      namespace,
      transporter: testNatsUrl(),
      nodeID: "second",
    });
    const env = {
      TRANSPORTER: testNatsUrl(),
      NAMESPACE: namespace,
      NODE_ID: "first",
      SERVICES: "test/fixtures/recording-processor.service.ts",
      RECORDING_DATABASE_URL: testDatabaseUrl(),
      RECORDING_TABLE: table,
      RECORDING_LEASE_MS: "3000",

    };
    child = spawnNode(env);
    await child.waitForOutput(/Taskpool node first started/);
    await waitFor(async () => (await call<any[]>(broker, "eventstore.processors")).some((p) => p.name === "recorder" && p.owner?.startsWith("first/")), 20_000);

    process.env.RECORDING_DATABASE_URL = testDatabaseUrl();
    process.env.RECORDING_TABLE = table;
    const { default: recorder } = await import("../fixtures/recording-processor.service.ts");
    broker.createService(recorder);
    await new Promise((r) => setTimeout(r, 1000));

    await appendMany(broker, "lease-a", 40);
    await waitFor(async () => Number((await pool.query(`SELECT count(DISTINCT global_position) AS n FROM ${table}`)).rows[0].n) >= 40, 20_000);
    const before = (await pool.query(`SELECT DISTINCT handled_by FROM ${table}`)).rows.map((r) => r.handled_by);
    expect(before).toEqual(["first"]);

    await child.kill(); // no goodbye, no release: the lease must run out
    const killedAt = Date.now();
    await appendMany(broker, "lease-b", 40);
    await waitFor(async () => Number((await pool.query(`SELECT count(DISTINCT global_position) AS n FROM ${table}`)).rows[0].n) >= 80, 30_000, 100);
    const tookOverAfter = Date.now() - killedAt;
    expect(tookOverAfter).toBeLessThan(15_000);
    const byNode = (await pool.query(`SELECT handled_by, count(*) AS n FROM ${table} GROUP BY 1 ORDER BY 1`)).rows;
    expect(byNode.map((r) => r.handled_by)).toEqual(["first", "second"]);
    const { rows } = await pool.query(`SELECT count(*) AS n, count(DISTINCT global_position) AS d FROM ${table}`);
    // At least once: nothing lost; a batch handled by the dead holder after its last stored token may come twice.
    expect(Number(rows[0].d)).toBe(80);
    const owner = (await call<any[]>(broker, "eventstore.processors")).find((p) => p.name === "recorder")!.owner;
    expect(owner.startsWith("second/")).toBe(true);
  });
});
