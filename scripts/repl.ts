// `npm run repl`: the Moleculer REPL.
// - With TRANSPORTER set, a bare node (no services) joins that cluster, so every action of every node can be
//   called, listed and benchmarked from here.
// - Without TRANSPORTER, there is no cluster to join: the embedded platform itself starts in this process with
//   its REPL (a second process cannot reach an embedded node that has no transporter; start `npm start` and
//   `npm run repl` both with TRANSPORTER=TCP to attach to a running embedded node without any server).
import { ServiceBroker } from "moleculer";
import { hostname } from "node:os";
import { brokerConfig } from "../moleculer.config.ts";
import { readEnvironment } from "../lib/env.ts";
import { loadServices } from "../services/index.ts";
import { replCommands } from "../lib/repl-commands.ts";

const env = readEnvironment();
const joining = env.transporter !== null;
const config = brokerConfig({ ...env, nodeId: joining ? `repl-${hostname()}-${process.pid}` : env.nodeId, logLevel: joining ? "warn" : env.logLevel });
const broker = new ServiceBroker({ ...config, replOptions: { customCommands: replCommands } as never });
if (!joining) await loadServices(broker, env.services);
await broker.start();
if (joining) {
  broker.logger.warn(`REPL node ${broker.nodeID} joined namespace "${env.namespace}" over ${env.transporter}`);
}
broker.repl();
