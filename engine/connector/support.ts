// Small helpers of the engine connector: content hashes for command ids, bounded and ordered work over rows with
// the connector's failure rules (a permanent rejection by the pool is passed over, a transient failure stops a
// feed), and the engine's version marker of a task. No I/O.
import { createHash } from "node:crypto";
import { isErrorOfType } from "../../lib/errors.ts";
import type { EngineTask } from "./engine-adapter.ts";

/** An item that failed, with its error. */
export interface Failure<T> {
  item: T;
  error: unknown;
}

/** JSON with the keys of every object sorted and undefined fields left out: equal content, equal text. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
}

/** A short hash of some content (16 hex digits), the same for equal content whatever its key order. */
export function hashOf(value: unknown): string {
  return createHash("sha256").update(stableStringify(value)).digest("hex").slice(0, 16);
}

export function messageOf(err: unknown): string {
  return String((err as Error | null)?.message ?? err);
}

/** Runs `work` for every item, at most `limit` at once; returns the items that failed with their errors. */
export async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<Failure<T>[]> {
  const failures: Failure<T>[] = [];
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failures.push({ item, error });
      }
    }
  });
  await Promise.all(workers);
  return failures;
}

/**
 * The pool refused the data itself (too large, not valid): sending it again cannot succeed, so the row is
 * recorded as an error and passed, instead of holding its feed back for ever. A later change is tried anew.
 */
export function isPermanentRejection(err: unknown): boolean {
  return isErrorOfType(err, "VALIDATION_ERROR") || isErrorOfType(err, "EVENT_TOO_LARGE") || isErrorOfType(err, "INVALID_EVENT_DATA");
}

/**
 * Handles rows one after the other. A transient failure stops there: that row and the ones after it count as
 * failed (not handled), so that the next read sees them again; a permanent rejection is passed over.
 */
export async function handleInOrder<T>(rows: readonly T[], work: (row: T) => Promise<void>): Promise<Failure<T>[]> {
  const failures: Failure<T>[] = [];
  for (let i = 0; i < rows.length; i++) {
    try {
      await work(rows[i]!);
    } catch (error) {
      if (isPermanentRejection(error)) {
        failures.push({ item: rows[i]!, error });
        continue;
      }
      for (const item of rows.slice(i)) failures.push({ item, error });
      break;
    }
  }
  return failures;
}

/**
 * What identifies the engine's version of a task: its creation and last-update times (the REST API exposes no
 * revision). Every change through the engine's task service moves `lastUpdated`.
 */
export function markerOf(task: Pick<EngineTask, "createTime" | "lastUpdated">): string {
  return `${task.createTime ?? ""}|${task.lastUpdated ?? ""}`;
}

/** A command id of the application: its parts joined, hashed when longer than the event store takes (300). */
export function commandIdOf(applicationName: string, ...parts: (string | number)[]): string {
  const id = [applicationName, ...parts].join(":");
  return id.length <= 300 ? id : `${applicationName.slice(0, 100)}:${hashOf(id)}`;
}
