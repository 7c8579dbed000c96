// Faults under load, on a private PostgreSQL and NATS (test/private-servers.ts: the shared servers must never be
// stopped) and real node processes:
//
//   e1: eventstore            e2: eventstore, task, dataEntry
//   c1: task, dataEntry        v:  view, api (HTTP)            (test/fault-cluster.ts)
//
// A client sends task.create with commandIds and the documented retry policy (test/fault-load.ts) while, in turn,
// c1 is SIGKILLed (one of two task/dataEntry nodes), e1 is SIGKILLed (one of two event store nodes), NATS is
// killed and restarted, and PostgreSQL is crashed and restarted; the killed nodes are started again. Meanwhile a
// reader asks the gateway for tasks it knows to exist. Then: nothing lost (every acknowledged position holds the
// acknowledged task's event), nothing doubled (one TaskCreated per task), no command failed for good, no 404 for a
// task that exists, and the view converges to the event store. No timings are asserted (bench:failover prints them).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { waitFor } from "../helpers.ts";
import { FaultCluster } from "../fault-cluster.ts";
import { runLoad, type LoadResult } from "../fault-load.ts";
import { taskStreamId } from "../../domain/task.ts";

/** Every task id the client sent a create for (acknowledged or not). */
const attempted = (result: LoadResult) => [...result.acks.map((a) => a.id), ...result.failed.map((f) => f.id)];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("faults under load (private PostgreSQL and NATS)", () => {
  const cluster = new FaultCluster();
  let client: ServiceBroker;

  beforeAll(async () => {
    await cluster.start();
    client = await cluster.client("client");
  });

  afterAll(() => cluster.destroy());

  it("loses nothing, doubles nothing, answers no 404 for what exists, and the view converges", async () => {
    const load = runLoad(client, { workers: 8, retry: true, prefix: "t", budgetMs: 90_000 });

    // A reader asks the gateway for tasks it knows exist (acknowledged at least 2 s ago, so the view has had time).
    const readStatuses: Record<number, number> = {};
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const known = load.result.acks.filter((a) => a.at < Date.now() - load.started - 2000);
        const ack = known[Math.floor(Math.random() * known.length)];
        if (ack) {
          const status = await fetch(`http://127.0.0.1:${cluster.port}/api/task/${ack.id}`, { headers: { "X-Current-User-ID": "kermit" }, signal: AbortSignal.timeout(15_000) })
            .then((r) => r.status)
            .catch(() => 0); // the gateway's node itself is not killed; a refused connection would show as 0
          readStatuses[status] = (readStatuses[status] ?? 0) + 1;
        }
        await pause(100);
      }
    })();

    await pause(3000);
    // One of two task/dataEntry nodes dies; it comes back later.
    await cluster.nodes.c1!.kill();
    await pause(4000);
    cluster.startNode("c1");
    await cluster.joined("c1", client);
    await pause(2000);
    // One of two event store nodes dies.
    await cluster.nodes.e1!.kill();
    await pause(4000);
    cluster.startNode("e1");
    await cluster.joined("e1", client);
    await pause(2000);
    // NATS dies for 3 s.
    await cluster.nats.kill();
    await pause(3000);
    await cluster.nats.start();
    await pause(5000);
    // PostgreSQL crashes for 3 s (the restart recovers: "the database system is starting up" for a moment).
    await cluster.postgres.stop("immediate");
    await pause(3000);
    await cluster.postgres.start();
    await pause(5000);

    const result = await load.stop();
    reading = false;
    await reader;

    expect(result.unexpected, JSON.stringify(result.attemptErrors)).toEqual([]);
    expect(result.failed).toEqual([]);
    expect(result.acks.length).toBeGreaterThan(100);

    // Straight from PostgreSQL: one TaskCreated per task, at the acknowledged position.
    const db = new pg.Client({ connectionString: cluster.postgres.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ stream_id: string; global_position: string }>(
        "SELECT stream_id, global_position FROM eventstore.events WHERE event_type = 'TaskCreated' AND stream_id = ANY($1)",
        [attempted(result).map(taskStreamId)],
      );
      const byStream = new Map<string, number[]>();
      for (const row of rows) byStream.set(row.stream_id, [...(byStream.get(row.stream_id) ?? []), Number(row.global_position)]);
      const doubled = [...byStream.entries()].filter(([, positions]) => positions.length > 1);
      expect(doubled).toEqual([]);
      const positions = new Set(rows.map((r) => Number(r.global_position)));
      const missing = result.acks.filter((a) => !positions.has(a.globalPosition));
      expect(missing).toEqual([]);
      expect(byStream.size).toBe(result.acks.length);
    } finally {
      await db.end();
    }

    // The view converges to the event store, and shows every acknowledged task.
    await waitFor(async () => {
      const [head, view] = await Promise.all([client.call("eventstore.head"), client.call("view.position")]) as [{ globalPosition: number }, { globalPosition: number }];
      return view.globalPosition >= head.globalPosition;
    }, 60_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}; the view node's log ends:\n${cluster.nodes.v!.output().slice(-4000)}`);
    });
    const sample = result.acks.filter((_, i) => i % Math.max(1, Math.floor(result.acks.length / 50)) === 0);
    for (const ack of sample) {
      const response = await fetch(`http://127.0.0.1:${cluster.port}/api/task/${ack.id}`, { headers: { "X-Current-User-ID": "kermit" } });
      expect(response.status, ack.id).toBe(200);
    }
    expect(readStatuses[404] ?? 0, JSON.stringify(readStatuses)).toBe(0);
  }, 300_000);
});
