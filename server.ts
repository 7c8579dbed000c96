// Starts one Taskpool node: the broker from moleculer.config.ts with the services named in SERVICES (all of
// them when unset: the embedded platform). Stops cleanly on SIGINT/SIGTERM and exits 0.
import { ServiceBroker } from "moleculer";
import { brokerConfig } from "./moleculer.config.ts";
import { readEnvironment } from "./lib/env.ts";
import { loadServices } from "./services/index.ts";

const env = readEnvironment();
const broker = new ServiceBroker(brokerConfig(env));
const services = await loadServices(broker, env.services);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  broker.logger.info(`${signal} received, stopping node ${broker.nodeID}`);
  try {
    await broker.stop();
  } catch (err) {
    console.error("Stop failed", err);
    process.exit(1);
  }
  // Exit by draining the event loop, not by process.exit: a handle left open by a service would keep the
  // process alive, so the watchdog names it and fails instead of hiding it.
  process.exitCode = 0;
  setTimeout(() => {
    console.error(`Node did not exit after stopping; open handles: ${process.getActiveResourcesInfo().join(", ")}`);
    process.exit(1);
  }, 10_000).unref();
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

try {
  await broker.start();
} catch (err) {
  broker.logger.fatal("Start failed", err);
  await broker.stop().catch(() => undefined);
  process.exit(1);
}
broker.logger.info(
  `Taskpool node ${broker.nodeID} started (${env.services ? "services: " + services.join(", ") : "embedded platform"}; ` +
    `transporter: ${env.transporter ?? "none"}; event store: ${env.databaseUrl ? "PostgreSQL" : "PGlite in " + env.dataDir}; ` +
    `view: ${env.mongoUrl ? "MongoDB" : "embedded"})`,
);
