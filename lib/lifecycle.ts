// A node's life cycle seen by its services: once a stop is requested, a service that has not begun starting never
// starts (so nothing comes up after Ctrl-C), and a service stops only after its own start has settled (so a stop
// during start-up closes what the start opened instead of racing it). Services that never started are not stopped.
import type { Service } from "moleculer";

type Handler = (this: Service) => unknown;

function handlers(value: unknown): Handler[] {
  if (typeof value === "function") return [value as Handler];
  return Array.isArray(value) ? (value as Handler[]) : [];
}

export class NodeLifecycle {
  stopping = false;

  /** Wraps the service's merged `started` and `stopped` handlers (Moleculer reads them when it calls them). */
  guard(service: Service): void {
    const schema = service.schema as { started?: unknown; stopped?: unknown };
    const started = handlers(schema.started);
    const stopped = handlers(schema.stopped);
    let start: Promise<void> | null = null;
    const lifecycle = this;
    schema.started = function (this: Service): Promise<void> | undefined {
      if (lifecycle.stopping) {
        this.logger.info(`Service '${this.fullName}' not started: the node is stopping`);
        return undefined;
      }
      start = (async () => {
        for (const handler of started) await handler.call(this);
      })();
      return start;
    };
    schema.stopped = async function (this: Service): Promise<void> {
      if (!start) return;
      await start.catch(() => undefined);
      for (const handler of stopped) await handler.call(this);
    };
  }
}
