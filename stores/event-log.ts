// The event store as its service offers it, without Moleculer: appends validated (plain JSON, size limit,
// schema version) and grouped into few transactions (group commit) with retries of transient database errors,
// reads guarded (an unreachable database becomes a retryable 503), the processors listed with their lag, and an
// orderly close that lets the appends in flight finish. services/eventstore.service.ts is its shell.
import { randomUUID } from "node:crypto";
import { badEvent, conflict, ErrorTypes, isDependencyOutage, unavailable } from "../lib/errors.ts";
import { findNonJson, isPlainObject, type JsonObject } from "../lib/json.ts";
import { sleep } from "../lib/sleep.ts";
import type { AppendOutcome, AppendRequest, EventStore, NewEvent, ProcessorRow } from "./event-store.ts";

export interface AppendParams {
  streamId: string;
  expectedVersion?: number | null;
  commandId?: string | null;
  events: { type: string; data: JsonObject; metadata?: JsonObject; schemaVersion?: number }[];
}

export interface AppendResult {
  streamVersion: number;
  globalPosition: number;
  /** true when the commandId was seen before and nothing was appended. */
  duplicate: boolean;
}

/** Told after a commit that appended events: a wake-up for consumers. */
export interface AppendedNotice {
  /** The highest global position the commit wrote. */
  globalPosition: number;
  count: number;
  types: string[];
}

export interface AppendLimits {
  /** Largest accepted event (data plus metadata, as JSON), bytes. */
  maxEventBytes: number;
  /** The schema version of an event type that names none. */
  currentVersion(type: string): number;
  newEventId?: () => string;
}

/** Checks an append and turns it into the store's request; throws INVALID_EVENT_DATA or EVENT_TOO_LARGE. */
export function toAppendRequest(params: AppendParams, limits: AppendLimits): AppendRequest {
  const newEventId = limits.newEventId ?? randomUUID;
  const events = params.events.map((event, index): NewEvent => {
    const where = findNonJson(event.data, `events[${index}].data`) ?? findNonJson(event.metadata ?? {}, `events[${index}].metadata`);
    if (where) {
      throw badEvent(ErrorTypes.INVALID_EVENT_DATA, `Event data must be plain JSON; ${where} is not`, { field: where, streamId: params.streamId });
    }
    if (!isPlainObject(event.data)) {
      throw badEvent(ErrorTypes.INVALID_EVENT_DATA, `events[${index}].data must be a JSON object`, { field: `events[${index}].data` });
    }
    const size = Buffer.byteLength(JSON.stringify(event.data)) + Buffer.byteLength(JSON.stringify(event.metadata ?? {}));
    if (size > limits.maxEventBytes) {
      throw badEvent(ErrorTypes.EVENT_TOO_LARGE, `Event ${index} of stream "${params.streamId}" has ${size} bytes; the limit is ${limits.maxEventBytes}`, {
        field: `events[${index}]`,
        size,
        limit: limits.maxEventBytes,
      });
    }
    return {
      eventId: newEventId(),
      type: event.type,
      schemaVersion: event.schemaVersion ?? limits.currentVersion(event.type),
      data: event.data,
      metadata: event.metadata ?? {},
    };
  });
  return { streamId: params.streamId, expectedVersion: params.expectedVersion ?? null, commandId: params.commandId ?? null, events };
}

/** The caller's answer to an outcome: a conflict becomes the typed CONFLICT carrying the current version. */
export function appendResult(request: AppendRequest, outcome: AppendOutcome): AppendResult {
  if (outcome.outcome === "conflict") {
    throw conflict(
      `Stream "${request.streamId}" is at version ${outcome.currentVersion}, not at the expected version ${request.expectedVersion}`,
      { streamId: request.streamId, expectedVersion: request.expectedVersion, currentVersion: outcome.currentVersion },
    );
  }
  return { streamVersion: outcome.streamVersion, globalPosition: outcome.globalPosition, duplicate: outcome.outcome === "duplicate" };
}

const TRANSIENT_SQLSTATES = new Set(["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"]);

/** Serialization failures, deadlocks, lock timeouts, restarts, too many connections, and outages. */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return (code !== undefined && TRANSIENT_SQLSTATES.has(code)) || isDependencyOutage(err);
}

function outage(err: unknown): Error {
  return unavailable("The event store database cannot be reached", { reason: String((err as Error).message) });
}

export interface GroupCommitOptions {
  /** Appends grouped into one transaction at most. */
  maxBatch: number;
  /** Transactions in flight at once. */
  maxConcurrentBatches: number;
  /** Writes a batch of appends in one transaction, an outcome per request. */
  write(requests: AppendRequest[]): Promise<AppendOutcome[]>;
  onAppended?(notice: AppendedNotice): void;
  /** Attempts of a batch that fails transiently (default 4). */
  attempts?: number;
  /** The wait before attempt `attempt + 1` (default 40, 80, 160 ms). */
  backoff?(attempt: number): Promise<void>;
}

interface Pending {
  request: AppendRequest;
  resolve: (outcome: AppendOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: concurrent appends share transactions. Two appends to one stream never share a transaction (the
 * second must see the first's version), nor run in two transactions at once (the second would only wait for the
 * first's stream lock). A failing batch is retried one append at a time, so that one bad append fails alone.
 */
export class GroupCommit {
  private readonly options: GroupCommitOptions;
  private queue: Pending[] = [];
  private inFlight = 0;
  private readonly busyStreams = new Set<string>();
  private idleWaiters: (() => void)[] = [];

  constructor(options: GroupCommitOptions) {
    this.options = options;
  }

  /** Appends waiting or being written. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  submit(request: AppendRequest): Promise<AppendOutcome> {
    return new Promise<AppendOutcome>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.flush();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Starts transactions for queued appends while fewer than the allowed number are in flight. */
  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.options.maxConcurrentBatches) {
      const batch: Pending[] = [];
      const streams = new Set<string>();
      const rest: Pending[] = [];
      for (const pending of this.queue) {
        const streamId = pending.request.streamId;
        if (batch.length < this.options.maxBatch && !streams.has(streamId) && !this.busyStreams.has(streamId)) {
          streams.add(streamId);
          batch.push(pending);
        } else {
          rest.push(pending);
        }
      }
      this.queue = rest;
      if (batch.length === 0) break;
      for (const streamId of streams) this.busyStreams.add(streamId);
      // One lock order for every transaction: no deadlock between two batches.
      batch.sort((a, b) => (a.request.streamId < b.request.streamId ? -1 : a.request.streamId > b.request.streamId ? 1 : 0));
      this.inFlight += 1;
      void this.runBatch(batch).finally(() => {
        this.inFlight -= 1;
        for (const streamId of streams) this.busyStreams.delete(streamId);
        if (this.inFlight === 0 && this.queue.length === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const wake of waiters) wake();
        }
        this.flush();
      });
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    let outcomes: AppendOutcome[];
    try {
      outcomes = await this.writeWithRetry(batch.map((p) => p.request));
    } catch (err) {
      if (batch.length > 1 && !isDependencyOutage(err)) {
        for (const pending of batch) await this.runBatch([pending]);
        return;
      }
      const failure = isDependencyOutage(err) ? outage(err) : err;
      for (const pending of batch) pending.reject(failure);
      return;
    }
    let highest = 0;
    let count = 0;
    const types = new Set<string>();
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.outcome === "appended") {
        highest = Math.max(highest, outcome.globalPosition);
        count += pending.request.events.length;
        for (const event of pending.request.events) types.add(event.type);
      }
      pending.resolve(outcome);
    });
    if (count > 0) this.options.onAppended?.({ globalPosition: highest, count, types: [...types] });
  }

  private async writeWithRetry(requests: AppendRequest[]): Promise<AppendOutcome[]> {
    const attempts = this.options.attempts ?? 4;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.options.write(requests);
      } catch (err) {
        if (attempt >= attempts || !isTransient(err)) throw err;
        await (this.options.backoff ? this.options.backoff(attempt) : sleep(20 * 2 ** attempt));
      }
    }
  }
}

/** The store's methods the event log uses itself; reads of other kinds go through `read`. */
export type EventLogStore = Pick<EventStore, "append" | "processors" | "head" | "countAfter">;

export interface EventLogOptions extends AppendLimits, Omit<GroupCommitOptions, "write"> {}

export type ProcessorWithLag = ProcessorRow & { lag: number; headPosition: number };

export class EventLog {
  private readonly store: EventLogStore;
  private readonly limits: AppendLimits;
  private readonly commits: GroupCommit;
  private closed = false;

  constructor(store: EventLogStore, options: EventLogOptions) {
    this.store = store;
    this.limits = options;
    this.commits = new GroupCommit({ ...options, write: (requests) => store.append(requests) });
  }

  async append(params: AppendParams): Promise<AppendResult> {
    const request = toAppendRequest(params, this.limits);
    if (this.closed) throw unavailable("The event store is shutting down");
    return appendResult(request, await this.commits.submit(request));
  }

  /** Runs a read; an unreachable database becomes a retryable 503 instead of a raw driver error. */
  async read<T>(read: () => Promise<T>): Promise<T> {
    if (this.closed) throw unavailable("The event store is shutting down");
    try {
      return await read();
    } catch (err) {
      if (isDependencyOutage(err)) throw outage(err);
      throw err;
    }
  }

  /** Every processor with its position and lag (events after its token, counted up to 100,000). */
  processors(): Promise<ProcessorWithLag[]> {
    return this.read(async () => {
      const [rows, head] = await Promise.all([this.store.processors(), this.store.head()]);
      return Promise.all(rows.map(async (row) => ({ ...row, lag: await this.store.countAfter(row.token, 100_000), headPosition: head.globalPosition })));
    });
  }

  /** Lets the appends queued or in flight finish, then refuses new appends and reads. */
  async close(): Promise<void> {
    await this.commits.idle();
    this.closed = true;
  }
}
