// Engine benchmark (npm run bench:engine): how fast the engine connector brings Operaton's user tasks into the
// task pool, on the real Operaton engine (scripts/services.sh) with the platform in this process — event store
// and connector state on the local PostgreSQL (fresh schemas), the view on the embedded store.
//
//   1. Latency: a task created in Operaton (an instance of a one-user-task process started over REST) until it
//      is visible in `view.tasksForUser`, one task at a time, the starts spread at random over the poll
//      interval (so that they land at every phase of the poll cycle), at the connector's default poll interval;
//      p50 / p99 / max, next to the engine's own start call.
//   2. Import: N tasks that exist before a fresh connector first runs; its first poll imports them. Tasks per
//      second until every `task.create` is done and until the view shows all of them, next to the raw rate of
//      Operaton's task list (`GET /task` with maxResults, paged) and of the list plus the two reads per task an
//      import needs (identity links, variables) in the same run.
//
// Environment: BENCH_LATENCY_TASKS (default 50), BENCH_IMPORT_TASKS (1000, below 3,334), BENCH_OPERATON_URL /
// BENCH_DATABASE_URL (default: TEST_* or `scripts/services.sh env`). Everything deployed into the engine is
// deleted (cascade) at the end; the schemas are dropped.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import EventStoreService from "../services/eventstore.service.ts";
import TaskService from "../services/task.service.ts";
import DataEntryService from "../services/data-entry.service.ts";
import ProcessDefinitionService from "../services/process-definition.service.ts";
import ProcessInstanceService from "../services/process-instance.service.ts";
import ProcessVariableService from "../services/process-variable.service.ts";
import ViewService from "../services/view.service.ts";
import { createEngineConnector } from "../services/engine-connector.service.ts";
import { encodeVariables } from "../domain/engine/variables.ts";
import { LocalFirstStrategy } from "../lib/strategies.ts";
import { Cleanup, createSchema, databaseUrl, dropSchema, envNumber, environmentLines, formatMs, formatRate, formatRatio, formatTable, percentile, postgresDescription, runId } from "./lib.ts";

// ---------------------------------------------------------------------------------------------------------------
// Operaton over REST

function operatonUrl(): string {
  const direct = process.env.BENCH_OPERATON_URL ?? process.env.TEST_OPERATON_URL;
  if (direct) return direct;
  try {
    const out = execFileSync("bash", ["scripts/services.sh", "env"], { encoding: "utf8" });
    const match = /^export TEST_OPERATON_URL=["']?([^"'\n]+)["']?$/m.exec(out);
    if (match) return match[1]!;
  } catch {
    // reported below
  }
  throw new Error("No Operaton address: set BENCH_OPERATON_URL or run `bash scripts/services.sh up`");
}

const engineUrl = operatonUrl();

async function rest<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(engineUrl + path, {
    method,
    headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json", accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : null) as T;
}

function oneTaskProcess(key: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    id="defs_${key}" targetNamespace="http://taskpool.io/bench">
  <bpmn:process id="${key}" name="Benchmark ${key}" isExecutable="true" camunda:historyTimeToLive="1">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:userTask id="review" name="Review" camunda:candidateUsers="kermit" camunda:candidateGroups="muppetshow" camunda:priority="50"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>`;
}

async function deploy(key: string): Promise<string> {
  const form = new FormData();
  form.set("deployment-name", `bench ${key}`);
  form.set("deployment-source", "taskpool-bench");
  form.set("data", new Blob([oneTaskProcess(key)], { type: "application/xml" }), `${key}.bpmn`);
  const response = await fetch(`${engineUrl}/deployment/create`, { method: "POST", body: form });
  if (!response.ok) throw new Error(`deployment of ${key} failed: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

async function startInstance(key: string, businessKey: string): Promise<string> {
  const variables = encodeVariables({ subject: `Bench ${businessKey}`, amount: 100, applicant: "kermit" }, "String");
  return (await rest<{ id: string }>("POST", `/process-definition/key/${key}/start`, { businessKey, variables })).id;
}

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The platform in this process

async function startPlatform(options: { dbUrl: string; storeSchema: string; connectorSchema: string; applicationName: string; key: string; autoPoll: boolean; pageSize?: number }): Promise<ServiceBroker> {
  const broker = new ServiceBroker({
    namespace: `bench-engine-${runId()}`,
    nodeID: `bench-${options.applicationName}`,
    logger: { type: "Console", options: { level: process.env.BENCH_LOG_LEVEL ?? "warn" } },
    registry: { strategy: LocalFirstStrategy, preferLocal: false },
    requestTimeout: 60_000,
    skipProcessEventRegistration: true,
  });
  const services: ServiceSchema<any>[] = [
    { ...EventStoreService, settings: { databaseUrl: options.dbUrl, schema: options.storeSchema } },
    TaskService,
    DataEntryService,
    ProcessDefinitionService,
    ProcessInstanceService,
    ProcessVariableService,
    { ...ViewService, settings: { mongoUrl: null } },
    createEngineConnector({
      env: {},
      settings: {
        applicationName: options.applicationName,
        engineUrl,
        databaseUrl: options.dbUrl,
        schema: options.connectorSchema,
        processDefinitionKeys: [options.key],
        autoPoll: options.autoPoll,
        ...(options.pageSize ? { pageSize: options.pageSize } : {}),
        // Everything else (poll interval, overlap, concurrency) at the connector's defaults.
      },
    }),
  ];
  for (const schema of services) broker.createService(schema);
  await broker.start();
  return broker;
}

const kermit = { username: "kermit", groups: ["muppetshow"] };

/** The import connector's page size (see measureImport). */
const IMPORT_PAGE_SIZE = 10_000;

async function visibleInView(broker: ServiceBroker, businessKey: string): Promise<boolean> {
  const page = (await broker.call("view.tasksForUser", { user: kermit, filters: [`task.businessKey=${businessKey}`], page: 0, size: 1 })) as { totalElementCount: number };
  return page.totalElementCount > 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a ÷ b as "0.62×"; two significant digits below 0.1 ("0.0031×"). */
function ratio(a: number, b: number): string {
  const r = a / b;
  if (!Number.isFinite(r)) return "-";
  return r < 0.1 ? `${r.toPrecision(2)}×` : formatRatio(a, b);
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements

interface LatencyResult {
  pollIntervalMs: number;
  startMs: Float64Array;
  visibleMs: Float64Array;
}

async function measureLatency(cleanup: Cleanup, dbUrl: string, id: string, count: number): Promise<LatencyResult> {
  const key = `bench_latency_${id}`;
  const deploymentId = await deploy(key);
  cleanup.add(`deployment ${key}`, () => rest("DELETE", `/deployment/${deploymentId}?cascade=true&skipCustomListeners=true&skipIoMappings=true`));
  const storeSchema = `bench_engine_store_${id}`;
  const connectorSchema = `bench_engine_conn_${id}`;
  await createSchema(dbUrl, storeSchema);
  cleanup.add(`schema ${storeSchema}`, () => dropSchema(dbUrl, storeSchema));
  await createSchema(dbUrl, connectorSchema);
  cleanup.add(`schema ${connectorSchema}`, () => dropSchema(dbUrl, connectorSchema));
  const broker = await startPlatform({ dbUrl, storeSchema, connectorSchema, applicationName: `bench-latency-${id}`, key, autoPoll: true });
  cleanup.add("latency broker", () => broker.stop());
  const pollIntervalMs = (broker.getLocalService("engineConnector") as any).settings.pollIntervalMs as number;
  // Let the connector finish its first (import) cycle before measuring.
  await broker.call("engineConnector.status");
  await sleep(pollIntervalMs * 2);

  const startMs = new Float64Array(count);
  const visibleMs = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    // Land at a random phase of the poll cycle.
    await sleep(Math.random() * pollIntervalMs);
    const businessKey = `lat-${id}-${i}`;
    const t0 = performance.now();
    await startInstance(key, businessKey);
    startMs[i] = performance.now() - t0;
    for (;;) {
      if (await visibleInView(broker, businessKey)) break;
      if (performance.now() - t0 > 60_000) throw new Error(`task of ${businessKey} not visible after 60 s`);
      await sleep(5);
    }
    visibleMs[i] = performance.now() - t0;
    if ((i + 1) % 10 === 0) console.error(`  latency: ${i + 1}/${count} tasks, last ${formatMs(visibleMs[i]!)} ms`);
  }
  await broker.stop();
  return { pollIntervalMs, startMs, visibleMs };
}

interface Rate {
  label: string;
  tasks: number;
  seconds: number;
}

async function measureImport(cleanup: Cleanup, dbUrl: string, id: string, count: number): Promise<{ rates: Rate[]; seeding: Rate }> {
  const key = `bench_import_${id}`;
  const deploymentId = await deploy(key);
  cleanup.add(`deployment ${key}`, () => rest("DELETE", `/deployment/${deploymentId}?cascade=true&skipCustomListeners=true&skipIoMappings=true`));

  // The pre-existing tasks.
  const seedStart = performance.now();
  await forEachLimited(
    Array.from({ length: count }, (_, i) => i),
    8,
    async (i) => {
      await startInstance(key, `imp-${id}-${i}`);
    },
  );
  const seeding: Rate = { label: "seeding: POST /process-definition/key/…/start (8 at a time)", tasks: count, seconds: (performance.now() - seedStart) / 1000 };
  console.error(`  import: ${count} instances started in ${seeding.seconds.toFixed(1)} s`);

  // Raw: the task list alone, paged as the connector pages (200).
  const pageSize = 200;
  const listAll = async () => {
    const ids: string[] = [];
    for (let first = 0; ; first += pageSize) {
      const page = await rest<{ id: string }[]>("GET", `/task?processDefinitionKey=${key}&sortBy=id&sortOrder=asc&firstResult=${first}&maxResults=${pageSize}`);
      ids.push(...page.map((t) => t.id));
      if (page.length < pageSize) return ids;
    }
  };
  await listAll(); // warm-up
  let t0 = performance.now();
  const ids = await listAll();
  const rawList: Rate = { label: `raw: GET /engine-rest/task, maxResults=${pageSize}, paged`, tasks: ids.length, seconds: (performance.now() - t0) / 1000 };
  if (ids.length !== count) throw new Error(`the engine lists ${ids.length} tasks, expected ${count}`);
  t0 = performance.now();
  await listAll();
  await forEachLimited(ids, 4, async (taskId) => {
    await Promise.all([rest("GET", `/task/${taskId}/identity-links`), rest("GET", `/task/${taskId}/variables?deserializeValues=false`)]);
  });
  const rawDetails: Rate = { label: "raw: the list + identity links + variables per task (4 at a time)", tasks: ids.length, seconds: (performance.now() - t0) / 1000 };
  console.error(`  import: raw list ${formatRate(rawList.tasks / rawList.seconds)} tasks/s, with details ${formatRate(rawDetails.tasks / rawDetails.seconds)} tasks/s`);

  // A fresh connector (no state) imports them on its first poll.
  const storeSchema = `bench_engine_istore_${id}`;
  const connectorSchema = `bench_engine_iconn_${id}`;
  await createSchema(dbUrl, storeSchema);
  cleanup.add(`schema ${storeSchema}`, () => dropSchema(dbUrl, storeSchema));
  await createSchema(dbUrl, connectorSchema);
  cleanup.add(`schema ${connectorSchema}`, () => dropSchema(dbUrl, connectorSchema));
  const applicationName = `bench-import-${id}`;
  // Page size: with the default (200), the first poll fails when more history rows than a page share one
  // timestamp inside the overlap window (the 3 variables of an instance do): a row sorted across a page boundary
  // comes twice and the batch that marks rows as seen is refused ("ON CONFLICT DO UPDATE command cannot affect
  // row a second time"). One page for all of them avoids that; listing is a small part of an import anyway
  // (see the raw rows).
  const broker = await startPlatform({ dbUrl, storeSchema, connectorSchema, applicationName, key, autoPoll: false, pageSize: IMPORT_PAGE_SIZE });
  cleanup.add("import broker", () => broker.stop());
  t0 = performance.now();
  const status = (await broker.call("engineConnector.sync", {})) as { counts: { tasks: number; commandsFailed: number }; errors: unknown[] };
  const synced = (performance.now() - t0) / 1000;
  if (status.counts.tasks < count || status.counts.commandsFailed > 0) {
    throw new Error(`the connector imported ${status.counts.tasks} of ${count} tasks (${status.counts.commandsFailed} commands failed): ${JSON.stringify(status.errors.slice(0, 3))}`);
  }
  for (;;) {
    const page = (await broker.call("view.tasksForApplication", { applicationName, page: 0, size: 1 })) as { totalElementCount: number };
    if (page.totalElementCount >= count) break;
    if (performance.now() - t0 > 600_000) throw new Error(`the view shows ${page.totalElementCount} of ${count} tasks after 10 minutes`);
    await sleep(20);
  }
  const inView = (performance.now() - t0) / 1000;
  console.error(`  import: ${count} tasks imported in ${synced.toFixed(1)} s, all in the view after ${inView.toFixed(1)} s`);
  await broker.stop();
  return {
    seeding,
    rates: [
      rawList,
      rawDetails,
      { label: `connector: first poll of a fresh connector, page size ${IMPORT_PAGE_SIZE} (every task.create done)`, tasks: count, seconds: synced },
      { label: "connector: … until the view shows every task", tasks: count, seconds: inView },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const latencyTasks = envNumber("BENCH_LATENCY_TASKS", 50);
  const importTasks = envNumber("BENCH_IMPORT_TASKS", 1000);
  // Three variables per task must fit one page of the import connector (see measureImport).
  if (importTasks * 3 >= IMPORT_PAGE_SIZE) throw new Error(`BENCH_IMPORT_TASKS must stay below ${Math.floor(IMPORT_PAGE_SIZE / 3)}`);
  const dbUrl = databaseUrl();
  const id = runId().replace(/-/g, "");
  const cleanup = new Cleanup();
  try {
    const version = await rest<{ version: string }>("GET", "/version");
    console.log("Engine benchmark: Operaton → engine connector → task pool");
    console.log(
      environmentLines({
        engine: `Operaton ${version.version} at ${engineUrl}`,
        "event store": await postgresDescription(dbUrl),
        view: "embedded store (in memory)",
        tasks: `latency ${latencyTasks}, import ${importTasks}`,
      }).join("\n"),
    );

    console.error("latency …");
    const latency = await measureLatency(cleanup, dbUrl, id, latencyTasks);
    const sortedStart = latency.startMs.slice().sort();
    const sortedVisible = latency.visibleMs.slice().sort();
    console.log(`\nEngine → view latency: ${latencyTasks} tasks, one at a time, started at a random phase of the connector's poll cycle (default interval ${latency.pollIntervalMs} ms)\n`);
    console.log(
      formatTable(
        [{ header: "from … to …" }, { header: "n", align: "right" }, { header: "p50 ms", align: "right" }, { header: "p99 ms", align: "right" }, { header: "max ms", align: "right" }],
        [
          ["start request sent → Operaton answered (task exists)", String(latencyTasks), formatMs(percentile(sortedStart, 0.5)), formatMs(percentile(sortedStart, 0.99)), formatMs(sortedStart[sortedStart.length - 1]!)],
          [
            "start request sent → task in view.tasksForUser",
            String(latencyTasks),
            formatMs(percentile(sortedVisible, 0.5)),
            formatMs(percentile(sortedVisible, 0.99)),
            formatMs(sortedVisible[sortedVisible.length - 1]!),
          ],
        ],
      ),
    );

    console.error("import …");
    const { rates, seeding } = await measureImport(cleanup, dbUrl, id, importTasks);
    const raw = rates[0]!;
    console.log(`\nImport: ${importTasks} open tasks that existed before a fresh connector's first poll (${formatRate(seeding.tasks / seeding.seconds)} instances/s were started to make them)\n`);
    console.log(
      formatTable(
        [{ header: "what" }, { header: "tasks", align: "right" }, { header: "seconds", align: "right" }, { header: "tasks/s", align: "right" }, { header: "÷ raw list", align: "right" }],
        rates.map((r) => [r.label, String(r.tasks), r.seconds.toFixed(2), formatRate(r.tasks / r.seconds), ratio(r.tasks / r.seconds, raw.tasks / raw.seconds)]),
      ),
    );
  } finally {
    await cleanup.run();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
