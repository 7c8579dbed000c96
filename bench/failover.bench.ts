// bench:failover — what a client goes through while parts of a cluster fail (issue 12). On a private PostgreSQL
// and NATS and four node processes (test/fault-cluster.ts: every service but the gateway on two nodes), two
// clients send task.create with commandIds at the same time: one follows the documented retry policy, one gives
// up at the first error. In turn: a task/dataEntry node is SIGKILLed, one of two event store nodes is SIGKILLed,
// NATS is down for OUTAGE_MS, PostgreSQL is crashed for OUTAGE_MS. Per scenario:
//
//   longest stall   the longest time in which the retrying client got no acknowledgement
//   errors          failed attempts seen by the retrying client / commands lost by the naive client
//   recovery        node kills: from the kill to the end of that stall; NATS and PostgreSQL: from their return
//                   to the first acknowledgement after it
//
// Settings: WORKERS (per client, default 8), OUTAGE_MS (default 3000), HEARTBEAT_INTERVAL_MS / _TIMEOUT_MS (as the nodes).
import { FaultCluster } from "../test/fault-cluster.ts";
import { longestStall, runLoad } from "../test/fault-load.ts";
import { envNumber, environmentLines, formatTable } from "./lib.ts";

const WORKERS = envNumber("WORKERS", 8);
const OUTAGE_MS = envNumber("OUTAGE_MS", 3000);
const SETTLE_MS = 6000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Scenario {
  name: string;
  /** Breaks something; returns when (ms since the load began) the broken part was back, or null for a node kill. */
  run(cluster: FaultCluster, now: () => number): Promise<number | null>;
}

const scenarios: Scenario[] = [
  {
    name: "SIGKILL a task/dataEntry node (of 2)",
    async run(cluster) {
      await cluster.nodes.c1!.kill();
      await pause(SETTLE_MS);
      cluster.startNode("c1");
      await cluster.joined("c1");
      return null;
    },
  },
  {
    name: "SIGKILL an eventstore node (of 2)",
    async run(cluster) {
      await cluster.nodes.e1!.kill();
      await pause(SETTLE_MS);
      cluster.startNode("e1");
      await cluster.joined("e1");
      return null;
    },
  },
  {
    name: `NATS down ${OUTAGE_MS / 1000} s`,
    async run(cluster, now) {
      await cluster.nats.kill();
      await pause(OUTAGE_MS);
      await cluster.nats.start();
      return now();
    },
  },
  {
    name: `PostgreSQL crashed ${OUTAGE_MS / 1000} s`,
    async run(cluster, now) {
      await cluster.postgres.stop("immediate");
      await pause(OUTAGE_MS);
      await cluster.postgres.start();
      return now();
    },
  },
];

async function main(): Promise<void> {
  const cluster = new FaultCluster();
  console.log("bench:failover");
  console.log(environmentLines({ heartbeat: `${cluster.heartbeat.heartbeatIntervalMs} ms, offline after ${cluster.heartbeat.heartbeatTimeoutMs} ms`, workers: `${WORKERS} per client`, outage: `${OUTAGE_MS} ms` }).join("\n"));
  await cluster.start();
  const rows: string[][] = [];
  try {
    const retrying = await cluster.client("bench-retrying");
    const naive = await cluster.client("bench-naive");
    for (const scenario of scenarios) {
      const withPolicy = runLoad(retrying, { workers: WORKERS, retry: true, prefix: `r${rows.length}`, budgetMs: 120_000 });
      const without = runLoad(naive, { workers: WORKERS, retry: false, prefix: `n${rows.length}` });
      const now = () => Date.now() - withPolicy.started;
      // Progress every 5 s (a stuck scenario shows what it is stuck on).
      const ticker = setInterval(() => console.log(`    ${(now() / 1000).toFixed(0)} s: ${withPolicy.result.acks.length} acknowledged, attempt errors ${JSON.stringify(withPolicy.result.attemptErrors)}`), 5000);
      await pause(2000);
      const faultAt = now();
      const backAt = await scenario.run(cluster, now);
      await pause(SETTLE_MS);
      const end = now();
      const [r, n] = await Promise.all([withPolicy.stop(), without.stop()]);
      clearInterval(ticker);
      const stall = longestStall(r.acks, faultAt, end);
      let recovery: number;
      if (backAt === null) {
        // The end of the longest gap after the kill.
        const times = r.acks.map((a) => a.at).filter((t) => t >= faultAt).sort((a, b) => a - b);
        let previous = faultAt;
        let gapEnd = faultAt;
        let longest = -1;
        for (const t of times) {
          if (t - previous > longest) {
            longest = t - previous;
            gapEnd = t;
          }
          previous = t;
        }
        recovery = gapEnd - faultAt;
      } else {
        const first = r.acks.map((a) => a.at).filter((t) => t >= backAt).sort((a, b) => a - b)[0];
        recovery = first === undefined ? NaN : first - backAt;
      }
      const attempts = Object.values(r.attemptErrors).reduce((a, b) => a + b, 0);
      const types = Object.entries(r.attemptErrors).map(([type, count]) => `${count} ${type}`).join(", ");
      rows.push([
        scenario.name,
        `${(stall / 1000).toFixed(2)} s`,
        String(r.failed.length),
        String(attempts),
        String(n.failed.length),
        Number.isNaN(recovery) ? "-" : `${(recovery / 1000).toFixed(2)} s${backAt === null ? " (kill)" : " (back)"}`,
        `${cluster.heartbeat.heartbeatIntervalMs} ms`,
        types || "-",
      ]);
      console.log(`  done: ${scenario.name}`);
    }
  } finally {
    await cluster.destroy();
  }
  console.log();
  console.log(
    formatTable(
      [
        { header: "fault" },
        { header: "longest stall", align: "right" },
        { header: "errors (retry policy)", align: "right" },
        { header: "retried attempts", align: "right" },
        { header: "errors (no retry)", align: "right" },
        { header: "recovery", align: "right" },
        { header: "heartbeat", align: "right" },
        { header: "attempt errors by type (retry policy)" },
      ],
      rows,
    ),
  );
}

await main();
process.exit(0);
