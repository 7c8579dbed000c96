// A node's life cycle seen by its services. Once a stop is requested, a service that has not begun starting never
// starts (its start stays pending, so nothing — not even Moleculer's "started" lines — comes up after Ctrl-C);
// the stop waits for the starts already under way (`settled`), and a service stops only after its own start has
// settled, so that it closes what its start opened instead of racing it. Services that never started are not
// stopped.
import type { Service } from "moleculer";

type Handler = (this: Service) => unknown;

function handlers(value: unknown): Handler[] {
  if (typeof value === "function") return [value as Handler];
  return Array.isArray(value) ? (value as Handler[]) : [];
}

export class NodeLifecycle {
  stopping = false;
  private readonly starts = new Set<Promise<void>>();

  /** Resolves when every start that began has finished (successfully or not). */
  async settled(): Promise<void> {
    await Promise.all([...this.starts].map((start) => start.catch(() => undefined)));
  }

  /** Wraps the service's merged `started` and `stopped` handlers (Moleculer reads them when it calls them). */
  guard(service: Service): void {
    const schema = service.schema as { started?: unknown; stopped?: unknown };
    const started = handlers(schema.started);
    const stopped = handlers(schema.stopped);
    let start: Promise<void> | null = null;
    const isStopping = () => this.stopping;
    const starts = this.starts;
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
      await start.catch(() => undefined);
      for (const handler of stopped) await handler.call(this);
    };
  }
}
