// Shared test plumbing: brokers, the backing servers' addresses (set by test/setup/servers.ts), unique
// namespaces and schemas so that suites never see each other's data.
import { createServer as createNetServer } from "node:net";
import { ServiceBroker, type BrokerOptions, type ServiceSchema } from "moleculer";
import { expect } from "vitest";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Browser } from "playwright-core";
import { LocalFirstStrategy } from "../lib/strategies.ts";

export function unique(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error("TEST_DATABASE_URL is not set: run the integration tests through vitest (test/setup/servers.ts)");
  return url;
}

export function testNatsUrl(): string {
  const url = process.env.TEST_NATS_URL;
  if (!url) throw new Error("TEST_NATS_URL is not set: run the integration tests through vitest (test/setup/servers.ts)");
  return url;
}

export function testMongoUrl(): string {
  const url = process.env.TEST_MONGO_URL;
  if (!url) throw new Error("TEST_MONGO_URL is not set: run the integration tests through vitest (test/setup/servers.ts)");
  return url;
}

export function testOperatonUrl(): string {
  const url = process.env.TEST_OPERATON_URL;
  if (!url) throw new Error("TEST_OPERATON_URL is not set: run the integration tests through vitest (test/setup/servers.ts)");
  return url;
}

export type TestBrokerOptions = Omit<BrokerOptions, "transporter"> & { transporter?: string | null };

/** broker.call with loose typing, for tests. */
export function call<T = any>(broker: ServiceBroker, action: string, params: object = {}, opts?: object): Promise<T> {
  return broker.call<T, object>(action, params, opts as never);
}

export function createBroker(options: TestBrokerOptions = {}): ServiceBroker {
  return new ServiceBroker({
    namespace: unique("test"),
    logger: { type: "Console", options: { level: process.env.TEST_LOG_LEVEL ?? "warn" } },
    registry: { strategy: LocalFirstStrategy, preferLocal: false },
    requestTimeout: 30_000,
    skipProcessEventRegistration: true,
    ...(options as BrokerOptions),
  });
}

export async function startBroker(services: ServiceSchema<any>[], options: TestBrokerOptions = {}): Promise<ServiceBroker> {
  const broker = createBroker(options);
  for (const schema of services) broker.createService(schema);
  await broker.start();
  return broker;
}

/** Drops a test schema from the real PostgreSQL. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Reading a stream's events from the event store, and waiting for a stream to hold given event types. */
export function streamReader(broker: () => ServiceBroker) {
  const events = async (streamId: string): Promise<any[]> => (await call(broker(), "eventstore.readStream", { streamId, allowEmpty: true })).events;
  const types = async (streamId: string): Promise<string[]> => (await events(streamId)).map((e) => e.type);
  const waitForTypes = (streamId: string, expected: string[], timeoutMs = 15_000) =>
    waitFor(async () => {
      const actual = await types(streamId);
      return actual.length >= expected.length ? actual : false;
    }, timeoutMs, 50).then((actual) => expect(actual).toEqual(expected));
  return { events, types, waitForTypes };
}

/** The error a call fails with; fails the test when the call succeeds. */
export async function errorOf(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to fail");
}

export async function waitFor<T>(probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value as T;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`Condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ""}`);
}

/** The event store service schema configured for one suite: PGlite in memory, or a fresh schema on PostgreSQL. */
export type StoreKind = "pglite" | "postgres";

export interface NodeProcess {
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  kill(): Promise<void>;
  /** The exit code once the process has exited by itself, else null. */
  exitCode(): Promise<number | null>;
  pid: number;
}

/**
 * The node options of `npm start`, read from package.json's start script (`exec node <options> server.ts`), so that
 * the tests start a node exactly as a user does: Node's own type stripping, the early signal handlers, the cache.
 */
function startOptions(): string[] {
  const script = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: { start: string } }).scripts.start;
  const match = /^exec node (.*) server\.ts$/.exec(script.trim());
  if (!match) throw new Error(`package.json's start script is not "exec node <options> server.ts": ${script}`);
  return match[1]!.split(/\s+/);
}

/** Starts a real Taskpool node (`server.ts`, as `npm start` does) in a child process with the given environment. */
export function spawnNode(env: Record<string, string>, entry = "server.ts"): NodeProcess {
  const child = spawn(process.execPath, [...startOptions(), entry], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    pid: child.pid!,
    output: () => output,
    async waitForOutput(pattern, timeoutMs = 60_000) {
      await waitFor(() => pattern.test(output) || child.exitCode !== null, timeoutMs, 50).catch(() => undefined);
      if (!pattern.test(output)) throw new Error(`Node did not print ${pattern} within ${timeoutMs} ms; output:\n${output}`);
    },
    async stop(signal = "SIGINT", timeoutMs = 20_000) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async exitCode() {
      return child.exitCode;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** A TCP port free on the loopback interface at the moment of asking. */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Debian's Chromium, headless, through playwright-core: the browser every page test reads the pages with. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
