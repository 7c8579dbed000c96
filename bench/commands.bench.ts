// Command benchmark (npm run bench:commands): `task.create` per second from a client broker over the real NATS
// server, with the platform (eventstore + task + the echo fixture) in a separate process started from
// server.ts on a fresh PostgreSQL database. In the same run and from the same client it measures
//   - the raw event-store append (`eventstore.append` of the same TaskCreated event, one new stream per call),
//   - a bare Moleculer round trip over NATS to a trivial action (`echo.hi`),
// so that the ratios show what the command path adds on top of the append and the append on top of transport.
//
// Environment: BENCH_SECONDS (per level and call, default 5), BENCH_WARMUP_SECONDS (default 1),
// BENCH_CONCURRENCY (default "1,16,64"), BENCH_DATABASE_URL / BENCH_NATS_URL (default: TEST_* or
// `scripts/services.sh env`).
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { connect } from "nats";
import { spawnNode } from "../test/helpers.ts";
import {
  Cleanup,
  comparisonTable,
  concurrencyLevels,
  createDatabase,
  createTaskParams,
  databaseUrl,
  dropDatabase,
  envNumber,
  environmentLines,
  eventBytes,
  natsUrl,
  postgresDescription,
  progress,
  runId,
  runLoad,
  taskCreatedEvent,
  type LoadResult,
} from "./lib.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
process.chdir(repoRoot); // server.ts and the service paths are resolved from the repository root

const seconds = envNumber("BENCH_SECONDS", 5);
const warmupSeconds = envNumber("BENCH_WARMUP_SECONDS", 1);
const levels = concurrencyLevels();
const url = databaseUrl();
const nats = natsUrl();
const id = runId();
const database = `bench_cmd_${id}`;
const namespace = `bench-${id}`;
const platformNode = `bench-platform-${id}`;
const cleanup = new Cleanup();
const startedAt = performance.now();

type Call = "task" | "append" | "echo";
const CALL_LABELS: Record<Call, string> = {
  task: "task.create",
  append: "eventstore.append (1 event, new stream)",
  echo: "echo.hi (bare round trip)",
};
const results = new Map<string, LoadResult>();
const key = (call: Call, concurrency: number) => `${call}/${concurrency}`;

async function natsServerVersion(): Promise<string> {
  try {
    const connection = await connect({ servers: nats, timeout: 3000 });
    const version = connection.info?.version ?? "unknown";
    await connection.close();
    return version;
  } catch (err) {
    return `unknown (${(err as Error).message})`;
  }
}

function table(): string {
  return comparisonTable({
    levels,
    subjects: ["task", "append", "echo"] as Call[],
    labels: CALL_LABELS,
    result: (call, concurrency) => results.get(key(call, concurrency)),
    subjectHeader: "call (client → NATS → platform)",
    rateHeader: "calls/s",
    ratioHeader: "task.create ÷ row",
  });
}

async function main(): Promise<void> {
  const sample = taskCreatedEvent(`task-${id}-0`);
  const header = [
    "Command benchmark: task.create from a client broker over NATS, platform in a separate process",
    ...environmentLines({
      database: await postgresDescription(url),
      nats: `nats-server ${await natsServerVersion()} at ${nats}`,
      platform: `server.ts, SERVICES=eventstore,task,echo fixture; fresh database; production broker config (JSON serializer, metrics on)`,
      payload: `task.create appends one ${sample.type} of ${eventBytes(sample)} B (data + metadata); eventstore.append writes the same event`,
      run: `${seconds} s per level and call after ${warmupSeconds} s warm-up; concurrency ${levels.join(", ")}; order per level: echo, append, task.create`,
    }),
  ].join("\n");
  console.error(header);

  const databaseUrlOfRun = await createDatabase(url, database);
  cleanup.add(`drop database ${database}`, () => dropDatabase(url, database));

  const platform = spawnNode({
    SERVICES: `eventstore,task,${repoRoot}test/fixtures/echo.service.ts`,
    TRANSPORTER: nats,
    DATABASE_URL: databaseUrlOfRun,
    NAMESPACE: namespace,
    NODE_ID: platformNode,
    LOG_LEVEL: "info",
  });
  cleanup.add(`stop the platform process ${platform.pid}`, async () => {
    const code = await platform.stop("SIGINT", 20_000);
    if (code !== 0) console.error(`platform exited with ${code}; its output:\n${platform.output()}`);
  });
  await platform.waitForOutput(new RegExp(`Taskpool node ${platformNode} started`), 120_000);

  const client = new ServiceBroker({
    namespace,
    nodeID: `bench-client-${id}`,
    transporter: nats as BrokerOptions["transporter"],
    serializer: "JSON",
    logger: { type: "Console", options: { level: "warn" } },
    requestTimeout: 30_000,
    skipProcessEventRegistration: true,
  });
  cleanup.add("stop the client broker", () => client.stop());
  await client.start();
  await client.waitForServices(["eventstore", "task", "echo"], 60_000);
  console.error(`Platform ${platformNode} (pid ${platform.pid}) up on database ${database}; client connected`);

  const ops: Record<Call, (seq: number) => Promise<unknown>> = {
    echo: (seq) => client.call("echo.hi", { name: `bench-${seq}` }),
    append: (seq) => {
      const streamId = `task-${id}-a${seq}`;
      return client.call("eventstore.append", { streamId, expectedVersion: 0, events: [taskCreatedEvent(streamId)] });
    },
    task: (seq) => client.call("task.create", createTaskParams(`${id}-${seq}`)),
  };
  for (const concurrency of levels) {
    for (const call of ["echo", "append", "task"] as Call[]) {
      const result = await runLoad({ concurrency, seconds, warmupSeconds, op: ops[call] });
      results.set(key(call, concurrency), result);
      progress(CALL_LABELS[call], result);
    }
  }

  const took = (performance.now() - startedAt) / 1000;
  console.log(`\n${header}\n`);
  console.log(table());
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
