// The parts of the platform gateway (services/api.service.ts), built from the node's configuration: its settings
// (lib/env.ts), the directory, authentication and the gate, the kept list answers, the event streams and the
// dashboard's streams.
import { environmentVariables, readEnvironment, type Environment } from "../lib/env.ts";
import { Directory } from "../lib/directory.ts";
import { AnswerCache } from "./answer-cache.ts";
import { clusterSnapshot, DashboardStreams } from "./dashboard.ts";
import { EventStreams } from "./event-streams.ts";
import { Authenticator, Gate, gatewaySecurityFromEnv, StreamLimiter } from "./gateway-security.ts";
import { STREAM_PATHS } from "./platform-routes.ts";
import { FormUrls } from "./tasklist-dto.ts";
import type { ActionCall } from "../lib/actions.ts";

export interface PlatformGatewayParts {
  config: Environment["api"];
  directory: Directory;
  formUrls: FormUrls;
  /** Replaced by bench/api.bench.ts: read at every call. */
  answers: AnswerCache;
  auth: Authenticator;
  gate: Gate;
  streamLimiter: StreamLimiter;
  events: EventStreams;
  dashboard: DashboardStreams;
}

/**
 * `securityEnv`: the authentication's variables (gateway/gateway-security.ts; tests pass their own), default the
 * process's environment; `call`: calls outside a request (the dashboard's pushes).
 */
export function platformGatewayParts(securityEnv: NodeJS.ProcessEnv | undefined, call: ActionCall): PlatformGatewayParts {
  const configured = readEnvironment();
  const config = configured.api;
  const directory = Directory.load();
  // One authentication for every gateway (gateway/gateway-security.ts).
  const security = gatewaySecurityFromEnv(environmentVariables(securityEnv));
  const auth = new Authenticator(security, directory);
  const streamLimiter = new StreamLimiter(security);
  const limit = (key: string) => streamLimiter.open(key);
  return {
    config,
    directory,
    formUrls: FormUrls.fromEnvironment(configured.formUrls ?? undefined, configured.publicUrl),
    answers: new AnswerCache(config.answerCacheBytes),
    auth,
    gate: new Gate(auth, { streamPaths: STREAM_PATHS }),
    streamLimiter,
    events: new EventStreams({ retentionMs: config.sseRetentionMs, retentionEvents: config.sseRetentionEvents, limit }),
    dashboard: new DashboardStreams({ snapshot: (hostDetails) => clusterSnapshot(call, hostDetails), intervalMs: config.dashboardIntervalMs, limit }),
  };
}

