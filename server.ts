// Starts one Taskpool node: the broker from moleculer.config.ts with the services named in SERVICES (all of
// them when unset: the embedded platform).
//
// SIGINT or SIGTERM at any moment ends the node with exit code 0: during start-up no service that has not begun
// starting starts any more (lib/lifecycle.ts), the ones under way finish, then everything stops; a second
// signal exits at once. A configuration error exits 1 with one line naming the variable.
//
// The embedded platform's database starts opening first (openEmbeddedEarly), before Moleculer and the services are
// imported: PGlite's start and the imports then share the time instead of following each other.
import type { ServiceBroker } from "moleculer";
import { flushCompileCache } from "node:module";
import { readEnvironment, type Environment } from "./lib/env.ts";
import { handBackPendingCalls, NodeLifecycle, processStopping } from "./lib/lifecycle.ts";
import { checkEmbeddedLayout, openEmbeddedEarly } from "./stores/database.ts";

/** How long a stop may take before the node exits anyway, naming what still holds it. */
const STOP_DEADLINE_MS = 4500;
/**
 * How long calls this node made to other nodes may still take once a stop began; then they are answered 503 (a
 * call to a node that died would otherwise hold the stop until the request timeout).
 */
const HAND_BACK_AFTER_MS = 1000;

let env: Environment;
try {
  env = readEnvironment();
  if (!env.databaseUrl) checkEmbeddedLayout(env.dataDir);
} catch (err) {
  console.error(`Taskpool cannot start: ${(err as Error).message}`);
  process.exit(1);
}
/** The embedded platform's hold on its database, given up once every service stopped. */
const releaseEmbedded = !env.databaseUrl && !env.services ? openEmbeddedEarly(env.dataDir) : null;

const lifecycle = new NodeLifecycle();
let broker: ServiceBroker | null = null;
let startBegun = false;

function log(message: string): void {
  if (broker) broker.logger.info(message);
  else console.log(message);
}

async function stop(signal: string): Promise<void> {
  log(`${signal} received, stopping${broker ? ` node ${broker.nodeID}` : ""}`);
  if (!startBegun) {
    // Still loading: nothing has started, so nothing needs stopping (the imports under way cannot be cancelled).
    process.exit(0);
  }
  setTimeout(() => {
    console.error(`Taskpool node did not stop within ${STOP_DEADLINE_MS} ms; still open: ${process.getActiveResourcesInfo().join(", ")}`);
    process.exit(0);
  }, STOP_DEADLINE_MS).unref();
  const handBack = setTimeout(() => {
    const count = broker ? handBackPendingCalls(broker) : 0;
    if (count > 0) log(`Stopping: ${count} call(s) to other nodes not answered within ${HAND_BACK_AFTER_MS} ms, answered 503`);
  }, HAND_BACK_AFTER_MS);
  handBack.unref();
  // Services already starting finish (the others no longer start), then all of them stop.
  await lifecycle.settled();
  try {
    await broker?.stop();
    await releaseEmbedded?.();
  } catch (err) {
    console.error(`Stop failed: ${(err as Error).message}`);
  }
  // Everything is closed; a timer a library left behind must not hold the process (nor an unfinished start).
  process.exit(0);
}

/**
 * One Ctrl-C in a terminal reaches the node twice — from the terminal, and forwarded by `npm start` — within
 * milliseconds: only a signal that comes later than this counts as a second one.
 */
const SECOND_SIGNAL_AFTER_MS = 500;
let firstSignalAt = 0;

function onSignal(signal: string): void {
  if (lifecycle.stopping) {
    if (Date.now() - firstSignalAt < SECOND_SIGNAL_AFTER_MS) return;
    console.error(`${signal} received again: exiting at once`);
    process.exit(130);
  }
  firstSignalAt = Date.now();
  lifecycle.stopping = true;
  processStopping.abort();
  void stop(signal);
}
// lib/early-signals.mjs holds the handlers from the first moment (and any signal that came while loading);
// without it (plain `node server.ts`), the handlers are installed here.
const signals = (globalThis as { taskpoolSignals?: { pending: string | null; dispatch: ((signal: string) => void) | null } }).taskpoolSignals;
if (signals) {
  signals.dispatch = onSignal;
  if (signals.pending) onSignal(signals.pending);
} else {
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
}

const [moleculer, { brokerConfig }, { loadServices }] = await Promise.all([import("moleculer"), import("./moleculer.config.ts"), import("./services/index.ts")]);
broker = new moleculer.ServiceBroker(brokerConfig(env));
let services: string[] = [];
try {
  services = await loadServices(broker, env.services, lifecycle);
} catch (err) {
  console.error(`Taskpool cannot start: ${(err as Error).message}`);
  process.exit(1);
}

if (!lifecycle.stopping) {
  startBegun = true;
  try {
    await broker.start();
  } catch (err) {
    if (!lifecycle.stopping) {
      broker.logger.fatal(`Start failed: ${(err as Error).message}`);
      await broker.stop().catch(() => undefined);
      process.exit(1);
    }
  }
  if (!lifecycle.stopping) {
    // What this start compiled is on disk now (lib/compile-cache.mjs), even if the node is killed later.
    flushCompileCache();
    broker.logger.info(
      `Taskpool node ${broker.nodeID} started (${env.services ? "services: " + services.join(", ") : "embedded platform"}; ` +
        `transporter: ${env.transporter ?? "none"}; event store: ${env.databaseUrl ? "PostgreSQL" : "PGlite in " + env.dataDir}; ` +
        `view: ${env.viewStore ?? (env.mongoUrl ? "mongo" : "postgres")})`,
    );
  }
}
