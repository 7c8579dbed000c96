// Data access of the PostgreSQL event store (server or PGlite): batch appends with optimistic concurrency,
// stream and global reads, and the processors' tokens and leases. No Moleculer here; the eventstore service
// wraps it.
//
// Ordering. Global positions come from a sequence, which hands out numbers at insert time while rows become
// visible at commit: a reader that trusted positions alone would skip an event whose transaction commits after
// a later-numbered one (the BIGSERIAL pitfall). Each event row therefore records its writer's transaction id,
// and the global log is read only below the oldest transaction still running
// (`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`), ordered and paged by
// (transaction_id, global_position). Everything below that barrier is final, so nothing can appear behind a
// reader's token later.
import type { Knex } from "knex";
import type { JsonObject } from "../lib/json.ts";
import { compareTokens, formatToken, parseToken, START_TOKEN } from "../lib/tokens.ts";
import type { Upcasters } from "../lib/upcasting.ts";

export interface NewEvent {
  eventId: string;
  type: string;
  schemaVersion: number;
  data: JsonObject;
  metadata: JsonObject;
}

export interface AppendRequest {
  streamId: string;
  /** null: append whatever the stream's version is. */
  expectedVersion: number | null;
  commandId: string | null;
  events: NewEvent[];
}

export type AppendOutcome =
  | { outcome: "appended" | "duplicate"; streamVersion: number; globalPosition: number }
  | { outcome: "conflict"; currentVersion: number };

export interface RecordedEvent {
  globalPosition: number;
  transactionId: string;
  /** The token just after this event. */
  token: string;
  streamId: string;
  streamVersion: number;
  eventId: string;
  type: string;
  schemaVersion: number;
  data: JsonObject;
  metadata: JsonObject;
  recordedAt: string;
}

export interface ReadAllOptions {
  after: string;
  limit: number;
  /** Data and metadata (as JSON text) a read returns at most; an event larger than this is read alone. */
  maxBytes?: number;
  eventTypes?: string[];
  streamPrefix?: string;
}

export interface ReadAllResult {
  events: RecordedEvent[];
  /**
   * Where the next read starts: after the last event returned, or — when the read reached the end of what is
   * visible — after the last visible event, matching the filters or not. A reader that skips event types
   * thereby moves over what it skips instead of scanning it again at every poll.
   */
  next: string;
  /** Everything visible after `after` that matches has been returned. */
  caughtUp: boolean;
}

export interface ProcessorRow {
  name: string;
  token: string;
  globalPosition: number;
  owner: string | null;
  leaseUntil: string | null;
  status: string;
  lastError: string | null;
  updatedAt: string;
}

// The transaction id travels as text (xid8 has no JS type). It is selected under another name on purpose:
// ORDER BY resolves a bare name to an output column first, and a text alias `transaction_id` would sort
// "100000" before "99999" — which once made a reader jump over fifteen transactions at that boundary.
const EVENT_COLUMNS = `global_position, transaction_id::text AS transaction_text, stream_id, stream_version, event_id,
  event_type, schema_version, data, metadata, recorded_at`;

interface EventRow {
  global_position: string | number;
  transaction_text: string;
  stream_id: string;
  stream_version: string | number;
  event_id: string;
  event_type: string;
  schema_version: number;
  data: JsonObject;
  metadata: JsonObject;
  recorded_at: Date | string;
}

function iso(value: Date | string | null): string | null {
  if (value === null) return null;
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

function escapeLike(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class EventStore {
  private readonly knex: Knex;
  private readonly upcasters: Upcasters;

  constructor(knex: Knex, upcasters: Upcasters) {
    this.knex = knex;
    this.upcasters = upcasters;
  }

  private toEvent(row: EventRow): RecordedEvent {
    const { schemaVersion, data } = this.upcasters.upcast(row.event_type, row.schema_version, row.data);
    return {
      globalPosition: Number(row.global_position),
      transactionId: row.transaction_text,
      token: formatToken(row.transaction_text, row.global_position),
      streamId: row.stream_id,
      streamVersion: Number(row.stream_version),
      eventId: row.event_id,
      type: row.event_type,
      schemaVersion,
      data,
      metadata: row.metadata,
      recordedAt: iso(row.recorded_at)!,
    };
  }

  /**
   * Appends a batch in one transaction, one outcome per request in the same order. Callers keep the stream
   * ids of one batch distinct and sorted, so that concurrent batches lock streams in the same order.
   */
  async append(batch: AppendRequest[]): Promise<AppendOutcome[]> {
    const result = await this.knex.raw(`SELECT idx, outcome, stream_version, global_position FROM append_to_streams(?::jsonb)`, [
      JSON.stringify(batch),
    ]);
    const rows = result.rows as { idx: number; outcome: string; stream_version: string | number; global_position: string | number | null }[];
    const outcomes: AppendOutcome[] = new Array(batch.length);
    for (const row of rows) {
      outcomes[row.idx] =
        row.outcome === "conflict"
          ? { outcome: "conflict", currentVersion: Number(row.stream_version) }
          : {
              outcome: row.outcome as "appended" | "duplicate",
              streamVersion: Number(row.stream_version),
              globalPosition: Number(row.global_position),
            };
    }
    return outcomes;
  }

  /** The stream's current version, or null when it does not exist. */
  async streamVersion(streamId: string): Promise<number | null> {
    const row = await this.knex("streams").where({ stream_id: streamId }).first("stream_version");
    return row ? Number(row.stream_version) : null;
  }

  /** One statement, so that the version and the events come from one snapshot. */
  async readStream(streamId: string, fromVersion: number, maxCount: number): Promise<{ streamVersion: number | null; events: RecordedEvent[] }> {
    const result = await this.knex.raw(
      `SELECT s.stream_version AS current_version, e.*
         FROM (SELECT stream_version FROM streams WHERE stream_id = ?) s
         LEFT JOIN LATERAL (
           SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?
         ) e ON true`,
      [streamId, streamId, fromVersion, maxCount],
    );
    const rows = result.rows as (EventRow & { current_version: string | number })[];
    if (rows.length === 0) return { streamVersion: null, events: [] };
    return {
      streamVersion: Number(rows[0]!.current_version),
      events: rows.filter((row) => row.global_position !== null).map((row) => this.toEvent(row)),
    };
  }

  /**
   * Events strictly after `after`, below the visibility barrier, in delivery order, at most `limit` of them and,
   * past the first, at most `maxBytes` of data. One statement: the page and the end of the log come from one
   * snapshot.
   */
  async readAll(options: ReadAllOptions): Promise<ReadAllResult> {
    const token = parseToken(options.after);
    const bindings: Knex.RawBinding[] = [token.transactionId.toString(), token.globalPosition.toString()];
    let filters = "";
    if (options.eventTypes && options.eventTypes.length > 0) {
      filters += ` AND event_type = ANY(?)`;
      bindings.push(options.eventTypes);
    }
    if (options.streamPrefix) {
      filters += ` AND stream_id LIKE ? ESCAPE '\\'`;
      bindings.push(`${escapeLike(options.streamPrefix)}%`);
    }
    bindings.push(options.limit, options.maxBytes ?? Number.MAX_SAFE_INTEGER);
    const result = await this.knex.raw(
      `WITH page AS (
         SELECT ${EVENT_COLUMNS}, transaction_id AS xid,
                row_number() OVER w AS rn,
                sum(octet_length(data::text) + octet_length(metadata::text)) OVER w AS running
           FROM events
          WHERE (transaction_id, global_position) > (?::text::xid8, ?::bigint)
            AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())${filters}
          WINDOW w AS (ORDER BY transaction_id, global_position)
          ORDER BY transaction_id, global_position
          LIMIT ?)
       , edge AS (
         SELECT (SELECT count(*) FROM page) AS scanned,
                (SELECT transaction_id::text || ':' || global_position FROM events
                  WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY transaction_id DESC, global_position DESC LIMIT 1) AS head)
       SELECT edge.scanned, edge.head, page.*
         FROM edge LEFT JOIN page ON page.rn = 1 OR page.running <= ?
        ORDER BY page.xid, page.global_position`,
      bindings,
    );
    const rows = result.rows as (EventRow & { scanned: string | number; head: string | null })[];
    const events = rows.filter((row) => row.global_position !== null).map((row) => this.toEvent(row));
    const last = events.length > 0 ? events[events.length - 1]!.token : options.after;
    const scanned = Number(rows[0]?.scanned ?? 0);
    const caughtUp = scanned < options.limit && events.length === scanned;
    if (!caughtUp) return { events, next: last, caughtUp };
    const head = rows[0]?.head ?? null;
    return { events, next: head && compareTokens(head, last) > 0 ? head : last, caughtUp };
  }

  /** The highest global position written, and the token of the last event a reader can see now. */
  async head(): Promise<{ globalPosition: number; token: string }> {
    const result = await this.knex.raw(`
      SELECT (SELECT coalesce(max(global_position), 0) FROM events) AS global_position,
             (SELECT transaction_id::text || ':' || global_position FROM events
               WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
               ORDER BY transaction_id DESC, global_position DESC LIMIT 1) AS token`);
    const row = result.rows[0] as { global_position: string | number; token: string | null };
    return { globalPosition: Number(row.global_position), token: row.token ?? START_TOKEN };
  }

  /** The token of the event at `globalPosition`, or null when no such event is visible. */
  async tokenOf(globalPosition: number): Promise<string | null> {
    const row = await this.knex("events").where({ global_position: globalPosition }).first(this.knex.raw("transaction_id::text AS transaction_id"));
    return row ? formatToken(row.transaction_id, globalPosition) : null;
  }

  /** How many events lie after `token` (counting stops at `cap`). */
  async countAfter(token: string, cap: number): Promise<number> {
    const t = parseToken(token);
    const result = await this.knex.raw(
      `SELECT count(*) AS n FROM (SELECT 1 FROM events WHERE (transaction_id, global_position) > (?::text::xid8, ?::bigint) LIMIT ?) x`,
      [t.transactionId.toString(), t.globalPosition.toString(), cap],
    );
    return Number(result.rows[0].n);
  }

  // ---- processors: tokens, leases, parked events ----

  /** Takes or extends the processor's lease; returns its token when granted, null when another owner holds it. */
  async claimProcessor(name: string, owner: string, leaseMs: number): Promise<{ token: string } | null> {
    const result = await this.knex.raw(
      `INSERT INTO processors AS p (name, owner, lease_until, status) VALUES (?, ?, now() + (? * interval '1 millisecond'), 'running')
       ON CONFLICT (name) DO UPDATE
         SET owner = excluded.owner, lease_until = excluded.lease_until, status = 'running', updated_at = now()
         WHERE p.status <> 'failed' AND (p.owner IS NULL OR p.owner = excluded.owner OR p.lease_until < now())
       RETURNING token`,
      [name, owner, leaseMs],
    );
    const row = result.rows[0] as { token: string } | undefined;
    return row ? { token: row.token } : null;
  }

  /** Extends a held lease, recording the token reached; false when the lease was lost to another owner. */
  async renewProcessor(name: string, owner: string, leaseMs: number, token: string | null): Promise<boolean> {
    const update: Record<string, unknown> = {
      lease_until: this.knex.raw(`now() + (? * interval '1 millisecond')`, [leaseMs]),
      updated_at: this.knex.fn.now(),
    };
    if (token) Object.assign(update, { token, global_position: parseToken(token).globalPosition.toString() });
    const count = await this.knex("processors").where({ name, owner }).update(update);
    return count > 0;
  }

  /** Stores the token when `owner` still holds the lease (a lost lease cannot move a token). */
  async saveProcessorToken(name: string, owner: string, token: string): Promise<boolean> {
    const count = await this.knex("processors")
      .where({ name, owner })
      .update({ token, global_position: parseToken(token).globalPosition.toString(), updated_at: this.knex.fn.now() });
    return count > 0;
  }

  async releaseProcessor(name: string, owner: string, status: string, lastError: string | null): Promise<void> {
    await this.knex("processors")
      .where({ name, owner })
      .update({ owner: null, lease_until: null, status, last_error: lastError, updated_at: this.knex.fn.now() });
  }

  async setProcessorStatus(name: string, owner: string, status: string, lastError: string | null): Promise<void> {
    await this.knex("processors").where({ name, owner }).update({ status, last_error: lastError, updated_at: this.knex.fn.now() });
  }

  /** Lets a processor that stopped on a failing event be claimed again. */
  async restartProcessor(name: string): Promise<void> {
    await this.knex("processors").where({ name, status: "failed" }).update({ status: "idle", last_error: null, updated_at: this.knex.fn.now() });
  }

  /** Moves the processor's token back to `token` (replay), whoever holds the lease. */
  async resetProcessor(name: string, token: string): Promise<void> {
    await this.knex.raw(
      `INSERT INTO processors AS p (name, token, global_position) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET token = excluded.token, global_position = excluded.global_position, updated_at = now()`,
      [name, token, parseToken(token).globalPosition.toString()],
    );
  }

  async processors(): Promise<ProcessorRow[]> {
    const rows = await this.knex("processors").orderBy("name");
    return rows.map((row) => ({
      name: row.name,
      token: row.token,
      globalPosition: Number(row.global_position),
      owner: row.owner,
      leaseUntil: iso(row.lease_until),
      status: row.status,
      lastError: row.last_error,
      updatedAt: iso(row.updated_at)!,
    }));
  }

  async parkEvent(processor: string, event: RecordedEvent, error: string, attempts: number): Promise<void> {
    await this.knex("parked_events")
      .insert({
        processor,
        global_position: event.globalPosition,
        stream_id: event.streamId,
        stream_version: event.streamVersion,
        event_type: event.type,
        error,
        attempts,
      })
      .onConflict(["processor", "global_position"])
      .merge(["error", "attempts", "parked_at"]);
  }

  async parkedEvents(processor: string): Promise<{ globalPosition: number; streamId: string; streamVersion: number; type: string; error: string; attempts: number; parkedAt: string }[]> {
    const rows = await this.knex("parked_events").where({ processor }).orderBy("global_position");
    return rows.map((row) => ({
      globalPosition: Number(row.global_position),
      streamId: row.stream_id,
      streamVersion: Number(row.stream_version),
      type: row.event_type,
      error: row.error,
      attempts: row.attempts,
      parkedAt: iso(row.parked_at)!,
    }));
  }
}
