// The engine adapter of the in-process engine an application registered under its name
// (engine/connector/process-engine.ts), for an engine connector created before the application has its engine:
// every call goes to the engine registered at that moment. While none is registered a call waits a little,
// then fails as "unavailable" (the connector tries again at its next poll). Closing it leaves the engine
// alone: the application owns it.
import { EngineError, type EngineAdapter } from "../connector/engine-adapter.ts";
import { engineOf, type ProcessEngine } from "../connector/process-engine.ts";

export function registeredEngineAdapter(applicationName: string, waitMs = 5000): EngineAdapter {
  const call = async (method: string, args: unknown[]): Promise<unknown> => {
    let engine: ProcessEngine;
    try {
      engine = await engineOf(applicationName, waitMs);
    } catch {
      throw new EngineError("unavailable", `no engine of application ${applicationName} is registered in this process`, { reason: "the application's engine is not running" });
    }
    const target = (engine.adapter as unknown as Record<string, unknown>)[method];
    if (typeof target !== "function") throw new Error(`the engine adapter of ${applicationName} has no method ${method}`);
    return (target as (...a: unknown[]) => unknown).apply(engine.adapter, args);
  };
  return new Proxy({} as EngineAdapter, {
    get(_target, property) {
      if (property === "close") return async () => undefined;
      // Not a thenable, and nothing but the adapter's methods.
      if (typeof property !== "string" || property === "then") return undefined;
      return (...args: unknown[]) => call(property, args);
    },
  });
}
