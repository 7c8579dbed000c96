// Schema versions of event types and the upcasters that lift old stored events to the current version on
// read, so that consumers and deciders only ever see the current shape of each type.
import type { JsonObject } from "./json.ts";

export type Upcaster = (data: JsonObject) => JsonObject;

export class Upcasters {
  private readonly steps = new Map<string, Map<number, Upcaster>>();
  private readonly current = new Map<string, number>();

  /** Declares that `type` stored at `fromVersion` becomes `fromVersion + 1` through `upcast`. */
  register(type: string, fromVersion: number, upcast: Upcaster): this {
    let chain = this.steps.get(type);
    if (!chain) this.steps.set(type, (chain = new Map()));
    chain.set(fromVersion, upcast);
    this.current.set(type, Math.max(this.current.get(type) ?? 1, fromVersion + 1));
    return this;
  }

  /** The version new events of `type` are written with. */
  currentVersion(type: string): number {
    return this.current.get(type) ?? 1;
  }

  upcast(type: string, schemaVersion: number, data: JsonObject): { schemaVersion: number; data: JsonObject } {
    const chain = this.steps.get(type);
    if (!chain) return { schemaVersion, data };
    let version = schemaVersion;
    let value = data;
    for (let step = chain.get(version); step; step = chain.get(version)) {
      value = step(value);
      version += 1;
    }
    return { schemaVersion: version, data: value };
  }
}
