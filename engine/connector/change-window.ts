// Change capture over timestamps that are neither unique nor committed in order (camunda.md §1.5): each poll
// re-reads an overlap window before the watermark, skips the rows it has already handled (a de-duplication set
// keyed per row and version), and moves the watermark to the newest *server* timestamp it handled — never to
// the client's clock. This module holds that arithmetic; the connector (connector.ts) does the reading and the bookkeeping.
// Pure: no I/O, no clock.
import type { IsoDate } from "../../domain/types.ts";

export interface ChangeRow {
  /** Identifies the row and its version (e.g. task id and last-updated time), so a changed row is new again. */
  key: string;
  /** The engine's timestamp of the change, ISO UTC. */
  time: IsoDate;
}

function shift(iso: IsoDate, ms: number): IsoDate {
  return new Date(Date.parse(iso) - ms).toISOString();
}

/** Where the next read starts: the watermark minus the overlap; null (no watermark yet) reads from the beginning. */
export function readFrom(watermark: IsoDate | null, overlapMs: number): IsoDate | null {
  return watermark === null ? null : shift(watermark, overlapMs);
}

/**
 * The rows still to handle, oldest first (ties by key, so the order is stable): each key once, and none that
 * is in `seen`.
 */
export function rowsToHandle<R extends ChangeRow>(rows: readonly R[], seen: ReadonlySet<string>): R[] {
  const byKey = new Map<string, R>();
  for (const row of rows) if (!seen.has(row.key) && !byKey.has(row.key)) byKey.set(row.key, row);
  return [...byKey.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * The watermark after handling rows: the newest handled time, never moving back. When a row failed, only the
 * rows before it count, so that the next read (from the watermark minus the overlap) sees the failed row again.
 */
export function advanceWatermark(watermark: IsoDate | null, handled: readonly ChangeRow[], failedAt: IsoDate | null = null): IsoDate | null {
  let next = watermark;
  for (const row of handled) {
    if (failedAt !== null && row.time >= failedAt) continue;
    if (next === null || row.time > next) next = row.time;
  }
  return next;
}

/** De-duplication entries older than this can go: no read reaches back that far any more. */
export function evictBefore(watermark: IsoDate | null, overlapMs: number): IsoDate | null {
  // One extra millisecond: some filters are inclusive (>=) at the start of the window.
  return watermark === null ? null : shift(watermark, overlapMs + 1);
}
