// A node's life cycle seen by its services. Once a stop is requested, a service that has not begun starting never
// starts (its start stays pending, so nothing — not even Moleculer's "started" lines — comes up after Ctrl-C);
// the stop waits for the starts already under way (`settled`), and a service stops only after its own start has
// settled, so that it closes what its start opened instead of racing it. Services that never started are not
// stopped.
import type { Service, ServiceBroker } from "moleculer";
import { unavailable } from "./errors.ts";

type Handler = (this: Service) => unknown;

/**
 * Aborted when this process begins to stop (server.ts): a start that waits for a dependency (stores/database.ts)
 * gives up instead of holding the stop.
 */
export const processStopping = new AbortController();

function handlers(value: unknown): Handler[] {
  if (typeof value === "function") return [value as Handler];
  return Array.isArray(value) ? (value as Handler[]) : [];
}

/** Resolves true when `promise` settles within `ms`, false when it does not. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      () => (clearTimeout(timer), resolve(true)),
      () => (clearTimeout(timer), resolve(true)),
    );
  });
}

export class NodeLifecycle {
  stopping = false;
  private readonly starts = new Set<Promise<void>>();
  private readonly startWaitMs: number;

  /**
   * @param startWaitMs how long a stop waits for a start under way (opening a database, say); a start that takes
   *   longer is left to the process's exit, which the stores survive like any crash, instead of being raced by
   *   its own stop.
   */
  constructor(startWaitMs = 500) {
    this.startWaitMs = startWaitMs;
  }

  /** Resolves when every start that began has finished, or after the bound. */
  async settled(): Promise<void> {
    await settlesWithin(Promise.all([...this.starts].map((start) => start.catch(() => undefined))), this.startWaitMs);
  }

  /** Wraps the service's merged `started` and `stopped` handlers (Moleculer reads them when it calls them). */
  guard(service: Service): void {
    const schema = service.schema as { started?: unknown; stopped?: unknown };
    const started = handlers(schema.started);
    const stopped = handlers(schema.stopped);
    let start: Promise<void> | null = null;
    const isStopping = () => this.stopping;
    const starts = this.starts;
    const startWaitMs = this.startWaitMs;
    schema.started = function (this: Service): Promise<void> {
      if (isStopping()) {
        this.logger.info(`Service '${this.fullName}' not started: the node is stopping`);
        return new Promise<void>(() => undefined);
      }
      start = (async () => {
        for (const handler of started) await handler.call(this);
      })();
      starts.add(start);
      return start;
    };
    schema.stopped = async function (this: Service): Promise<void> {
      if (!start) return;
      if (!(await settlesWithin(start, startWaitMs))) {
        this.logger.info(`Service '${this.fullName}' is still starting: left to the exit`);
        return;
      }
      for (const handler of stopped) await handler.call(this);
    };
  }
}

interface PendingRequest {
  nodeID: string;
  action: { name: string };
  reject(err: Error): void;
}

/**
 * Answers every call this node still waits for from another node with a retryable SERVICE_UNAVAILABLE (503).
 * Used when the node stops: a call to a node that died would otherwise hold the stop (Moleculer's tracking waits
 * for the contexts that made it) until the request timeout. The callers get a 503 they may retry elsewhere —
 * commands carry a commandId, so a command the remote node did run is not applied twice. Returns how many there were.
 */
export function handBackPendingCalls(broker: ServiceBroker): number {
  // Moleculer keeps them in the transit's `pendingRequests` (not in its typings).
  const pending = (broker.transit as unknown as { pendingRequests?: Map<string, PendingRequest> } | undefined)?.pendingRequests;
  if (!pending) return 0;
  const requests = [...pending.entries()];
  for (const [id, request] of requests) {
    pending.delete(id);
    request.reject(unavailable(`Node ${broker.nodeID} is stopping; ${request.action.name} on node ${request.nodeID} was not answered in time`));
  }
  return requests.length;
}
