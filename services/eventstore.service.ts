// Service `eventstore`: the source of truth. Owns the PostgreSQL (or PGlite) event store, validates appends,
// groups concurrent appends into one transaction (group commit), wakes consumers with `eventstore.appended`
// after each commit, and keeps the tracking processors' tokens and leases.
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { randomUUID } from "node:crypto";
import { readEnvironment } from "../lib/env.ts";
import { asDependencyOutage, badEvent, conflict, ErrorTypes, isDependencyOutage, notFound, unavailable } from "../lib/errors.ts";
import { findNonJson, isPlainObject, type JsonObject } from "../lib/json.ts";
import { START_TOKEN, TOKEN_PATTERN } from "../lib/tokens.ts";
import type { Upcasters } from "../lib/upcasting.ts";
import { eventStoreMigrations, eventStoreMigrationsTable } from "../migrations/event-store.ts";
import { embeddedDatabaseDirectory, openDatabase, type Database } from "../stores/database.ts";
import { EventStore, type AppendOutcome, type AppendRequest, type ProcessorRow } from "../stores/event-store.ts";
import { domainUpcasters } from "../domain/upcasters.ts";
import { sleep } from "../lib/sleep.ts";

export interface EventStoreSettings extends ServiceSettingSchema {
  /** postgres://… ; default DATABASE_URL; null = PGlite. */
  databaseUrl?: string | null;
  /** The embedded database's directory; default DATA_DIR/pglite; "memory" keeps a private one in memory. */
  pgliteDir?: string;
  /** PostgreSQL schema of the tables (default "eventstore"; tests use one per suite). */
  schema?: string;
  /** Largest accepted event (data plus metadata, as JSON), bytes. Default EVENT_MAX_BYTES or 900 KiB. */
  maxEventBytes?: number;
  /** Data a readAll reply carries at most, bytes (an event larger than this comes alone). Default 256 KiB. */
  maxReadBytes?: number;
  /** Appends grouped into one transaction at most. */
  maxBatch?: number;
  /** Transactions in flight at once (PGlite has one connection, so 1 there). */
  maxConcurrentBatches?: number;
  upcasters?: Upcasters;
}

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

interface Pending {
  request: AppendRequest;
  resolve: (outcome: AppendOutcome) => void;
  reject: (err: unknown) => void;
}

interface Locals {
  database: Database;
  store: EventStore;
  queue: Pending[];
  inFlight: number;
  maxBatch: number;
  maxConcurrentBatches: number;
  maxEventBytes: number;
  idle: Promise<void> | null;
  signalIdle: (() => void) | null;
}

const TRANSIENT_SQLSTATES = new Set(["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"]);
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return (code !== undefined && TRANSIENT_SQLSTATES.has(code)) || isDependencyOutage(err);
}

const eventParams = {
  type: "object",
  strict: "remove",
  props: {
    type: { type: "string", min: 1, max: 200 },
    data: { type: "object", strict: false },
    metadata: { type: "object", strict: false, optional: true },
    schemaVersion: { type: "number", integer: true, min: 1, optional: true },
  },
};

const EventStoreService: ServiceSchema<EventStoreSettings> & { settings: EventStoreSettings } = {
  name: "eventstore",
  settings: {},

  hooks: {
    error: {
      // A database outage reaches callers as a typed, retryable 503 (never a raw driver error such as 57P03).
      "*"(_ctx: unknown, err: unknown) {
        throw asDependencyOutage(err, "The event store database");
      },
    },
  },

  actions: {
    append: {
      params: {
        streamId: { type: "string", min: 1, max: 300 },
        expectedVersion: { type: "number", integer: true, min: 0, optional: true, nullable: true },
        commandId: { type: "string", min: 1, max: 300, optional: true, nullable: true },
        events: { type: "array", min: 1, max: 1000, items: eventParams },
      },
      async handler(ctx: Context<AppendParams>): Promise<AppendResult> {
        const request = this.toAppendRequest(ctx.params);
        const outcome = await this.enqueue(request);
        if (outcome.outcome === "conflict") {
          throw conflict(
            `Stream "${request.streamId}" is at version ${outcome.currentVersion}, not at the expected version ${request.expectedVersion}`,
            { streamId: request.streamId, expectedVersion: request.expectedVersion, currentVersion: outcome.currentVersion },
          );
        }
        return { streamVersion: outcome.streamVersion, globalPosition: outcome.globalPosition, duplicate: outcome.outcome === "duplicate" };
      },
    },

    readStream: {
      params: {
        streamId: { type: "string", min: 1, max: 300 },
        fromVersion: { type: "number", integer: true, min: 1, optional: true, convert: true },
        maxCount: { type: "number", integer: true, min: 1, max: 10_000, optional: true, convert: true },
        allowEmpty: { type: "boolean", optional: true },
      },
      async handler(ctx: Context<{ streamId: string; fromVersion?: number; maxCount?: number; allowEmpty?: boolean }>) {
        const { streamId, fromVersion = 1, maxCount = 10_000, allowEmpty = false } = ctx.params;
        const { streamVersion, events } = await this.guard(() => this.store.readStream(streamId, fromVersion, maxCount));
        if (streamVersion === null && !allowEmpty) throw notFound(`Stream "${streamId}" does not exist`, { streamId });
        return { streamId, streamVersion: streamVersion ?? 0, events };
      },
    },

    readAll: {
      params: {
        after: { type: "string", optional: true, pattern: TOKEN_PATTERN },
        limit: { type: "number", integer: true, min: 1, max: 10_000, optional: true, convert: true },
        maxBytes: { type: "number", integer: true, min: 1, optional: true, convert: true },
        eventTypes: { type: "array", items: "string", optional: true },
        streamPrefix: { type: "string", min: 1, optional: true },
      },
      async handler(ctx: Context<{ after?: string; limit?: number; maxBytes?: number; eventTypes?: string[]; streamPrefix?: string }>) {
        const limit = ctx.params.limit ?? 1000;
        const after = ctx.params.after ?? START_TOKEN;
        // A reply must stay well below the transporter's largest message (NATS: 1 MiB), whatever the events weigh.
        const maxBytes = Math.min(ctx.params.maxBytes ?? this.settings.maxReadBytes!, this.settings.maxReadBytes!);
        return this.guard(() => this.store.readAll({ after, limit, maxBytes, eventTypes: ctx.params.eventTypes, streamPrefix: ctx.params.streamPrefix }));
      },
    },

    head: {
      async handler() {
        return this.guard(() => this.store.head());
      },
    },

    /** How many events lie after a token (counting stops at `cap`): a consumer's lag. */
    countAfter: {
      params: { token: { type: "string", pattern: TOKEN_PATTERN }, cap: { type: "number", integer: true, min: 1, max: 10_000_000, optional: true, convert: true } },
      async handler(ctx: Context<{ token: string; cap?: number }>) {
        return { count: await this.guard(() => this.store.countAfter(ctx.params.token, ctx.params.cap ?? 100_000)) };
      },
    },

    tokenOf: {
      params: { globalPosition: { type: "number", integer: true, min: 1, convert: true } },
      async handler(ctx: Context<{ globalPosition: number }>) {
        return { token: await this.guard(() => this.store.tokenOf(ctx.params.globalPosition)) };
      },
    },

    // ---- tracking processors (used by mixins/tracking-processor.mixin.ts) ----

    claimProcessor: {
      params: { name: "string", owner: "string", leaseMs: { type: "number", integer: true, min: 100 } },
      async handler(ctx: Context<{ name: string; owner: string; leaseMs: number }>) {
        return this.guard(() => this.store.claimProcessor(ctx.params.name, ctx.params.owner, ctx.params.leaseMs));
      },
    },
    renewProcessor: {
      params: { name: "string", owner: "string", leaseMs: { type: "number", integer: true, min: 100 }, token: { type: "string", optional: true, nullable: true } },
      async handler(ctx: Context<{ name: string; owner: string; leaseMs: number; token?: string | null }>) {
        return this.guard(() => this.store.renewProcessor(ctx.params.name, ctx.params.owner, ctx.params.leaseMs, ctx.params.token ?? null));
      },
    },
    saveProcessorToken: {
      params: { name: "string", owner: "string", token: "string" },
      async handler(ctx: Context<{ name: string; owner: string; token: string }>) {
        return this.guard(() => this.store.saveProcessorToken(ctx.params.name, ctx.params.owner, ctx.params.token));
      },
    },
    releaseProcessor: {
      params: { name: "string", owner: "string", status: { type: "string", optional: true }, lastError: { type: "string", optional: true, nullable: true } },
      async handler(ctx: Context<{ name: string; owner: string; status?: string; lastError?: string | null }>) {
        await this.guard(() => this.store.releaseProcessor(ctx.params.name, ctx.params.owner, ctx.params.status ?? "idle", ctx.params.lastError ?? null));
        return true;
      },
    },
    processorStatus: {
      params: { name: "string", owner: "string", status: "string", lastError: { type: "string", optional: true, nullable: true } },
      async handler(ctx: Context<{ name: string; owner: string; status: string; lastError?: string | null }>) {
        await this.guard(() => this.store.setProcessorStatus(ctx.params.name, ctx.params.owner, ctx.params.status, ctx.params.lastError ?? null));
        return true;
      },
    },
    restartProcessor: {
      params: { name: "string" },
      async handler(ctx: Context<{ name: string }>) {
        await this.guard(() => this.store.restartProcessor(ctx.params.name));
        return true;
      },
    },
    resetProcessor: {
      params: { name: "string", token: { type: "string", optional: true } },
      async handler(ctx: Context<{ name: string; token?: string }>) {
        await this.guard(() => this.store.resetProcessor(ctx.params.name, ctx.params.token ?? START_TOKEN));
        return true;
      },
    },
    parkEvent: {
      params: { processor: "string", event: "object", error: "string", attempts: { type: "number", integer: true } },
      async handler(ctx: Context<{ processor: string; event: never; error: string; attempts: number }>) {
        await this.guard(() => this.store.parkEvent(ctx.params.processor, ctx.params.event, ctx.params.error, ctx.params.attempts));
        return true;
      },
    },
    parkedEvents: {
      params: { processor: "string" },
      async handler(ctx: Context<{ processor: string }>) {
        return this.guard(() => this.store.parkedEvents(ctx.params.processor));
      },
    },
    /** Every processor with its position and lag (events after its token, counted up to 100,000). */
    processors: {
      async handler() {
        return this.guard(async () => {
          const [rows, head] = await Promise.all([this.store.processors(), this.store.head()]);
          return Promise.all(
            rows.map(async (row: ProcessorRow) => ({ ...row, lag: await this.store.countAfter(row.token, 100_000), headPosition: head.globalPosition })),
          );
        });
      },
    },
  },

  methods: {
    toAppendRequest(params: AppendParams): AppendRequest {
      const maxBytes = (this as unknown as Locals).maxEventBytes;
      const events = params.events.map((event, index) => {
        const where = findNonJson(event.data, `events[${index}].data`) ?? findNonJson(event.metadata ?? {}, `events[${index}].metadata`);
        if (where) {
          throw badEvent(ErrorTypes.INVALID_EVENT_DATA, `Event data must be plain JSON; ${where} is not`, { field: where, streamId: params.streamId });
        }
        if (!isPlainObject(event.data)) {
          throw badEvent(ErrorTypes.INVALID_EVENT_DATA, `events[${index}].data must be a JSON object`, { field: `events[${index}].data` });
        }
        const size = Buffer.byteLength(JSON.stringify(event.data)) + Buffer.byteLength(JSON.stringify(event.metadata ?? {}));
        if (size > maxBytes) {
          throw badEvent(ErrorTypes.EVENT_TOO_LARGE, `Event ${index} of stream "${params.streamId}" has ${size} bytes; the limit is ${maxBytes}`, {
            field: `events[${index}]`,
            size,
            limit: maxBytes,
          });
        }
        return {
          eventId: randomUUID(),
          type: event.type,
          schemaVersion: event.schemaVersion ?? this.settings.upcasters!.currentVersion(event.type),
          data: event.data,
          metadata: event.metadata ?? {},
        };
      });
      return { streamId: params.streamId, expectedVersion: params.expectedVersion ?? null, commandId: params.commandId ?? null, events };
    },

    enqueue(request: AppendRequest): Promise<AppendOutcome> {
      if (this.closed) return Promise.reject(unavailable("The event store is shutting down"));
      return new Promise<AppendOutcome>((resolve, reject) => {
        this.queue.push({ request, resolve, reject });
        this.flush();
      });
    },

    /** Starts transactions for queued appends while fewer than the allowed number are in flight. */
    flush(): void {
      while (this.queue.length > 0 && this.inFlight < this.maxConcurrentBatches) {
        const batch: Pending[] = [];
        const streams = new Set<string>();
        const rest: Pending[] = [];
        for (const pending of this.queue) {
          // Two appends to one stream never share a transaction (the second must see the first's version), nor
          // run in two transactions at once (the second would only wait for the first's stream lock).
          const streamId = pending.request.streamId;
          if (batch.length < this.maxBatch && !streams.has(streamId) && !this.busyStreams.has(streamId)) {
            streams.add(pending.request.streamId);
            batch.push(pending);
          } else {
            rest.push(pending);
          }
        }
        this.queue = rest;
        if (batch.length === 0) break;
        for (const streamId of streams) this.busyStreams.add(streamId);
        batch.sort((a, b) => (a.request.streamId < b.request.streamId ? -1 : a.request.streamId > b.request.streamId ? 1 : 0));
        this.inFlight += 1;
        void this.runBatch(batch).finally(() => {
          this.inFlight -= 1;
          for (const streamId of streams) this.busyStreams.delete(streamId);
          if (this.inFlight === 0 && this.queue.length === 0 && this.signalIdle) this.signalIdle();
          this.flush();
        });
      }
    },

    async runBatch(batch: Pending[]): Promise<void> {
      let outcomes: AppendOutcome[];
      try {
        outcomes = await this.appendWithRetry(batch.map((p) => p.request));
      } catch (err) {
        if (batch.length > 1 && !isDependencyOutage(err)) {
          // One bad append must not fail the others: run them one by one.
          for (const pending of batch) await this.runBatch([pending]);
          return;
        }
        const failure = isDependencyOutage(err)
          ? unavailable("The event store database cannot be reached", { reason: String((err as Error).message) })
          : err;
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
      if (count > 0) {
        // A wake-up for consumers; losing it costs them latency (they also poll), never an event. The types let
        // a consumer that reads only some of them sleep on.
        void this.broker.broadcast("eventstore.appended", { globalPosition: highest, count, types: [...types] });
      }
    },

    async appendWithRetry(requests: AppendRequest[]): Promise<AppendOutcome[]> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.store.append(requests);
        } catch (err) {
          if (attempt >= 4 || !isTransient(err)) throw err;
          await sleep(20 * 2 ** attempt);
        }
      }
    },

    /** Runs a read; an unreachable database becomes a retryable 503 instead of a raw driver error. */
    async guard<T>(read: () => Promise<T>): Promise<T> {
      if (this.closed) throw unavailable("The event store is shutting down");
      try {
        return await read();
      } catch (err) {
        if (isDependencyOutage(err)) throw unavailable("The event store database cannot be reached", { reason: String((err as Error).message) });
        throw err;
      }
    },
  },

  created() {
    const env = readEnvironment();
    const s = this.settings;
    s.databaseUrl = s.databaseUrl === undefined ? env.databaseUrl : s.databaseUrl;
    s.pgliteDir = s.pgliteDir ?? embeddedDatabaseDirectory(env.dataDir);
    s.schema = s.schema ?? "eventstore";
    // Every event travels in one transporter message (the append, and a readAll reply): NATS carries 1 MiB at most.
    s.maxEventBytes = s.maxEventBytes ?? env.eventMaxBytes;
    s.maxReadBytes = s.maxReadBytes ?? 256 * 1024;
    s.upcasters = s.upcasters ?? domainUpcasters;
    this.maxEventBytes = s.maxEventBytes;
    this.maxBatch = s.maxBatch ?? 256;
    this.maxConcurrentBatches = s.maxConcurrentBatches ?? (s.databaseUrl ? 4 : 1);
    this.queue = [];
    this.inFlight = 0;
    this.busyStreams = new Set<string>();
  },

  async started() {
    const s = this.settings;
    this.database = await openDatabase({
      url: s.databaseUrl ?? null,
      pgliteDir: s.pgliteDir === "memory" ? null : s.pgliteDir!,
      schema: s.schema!,
      migrations: eventStoreMigrations,
      migrationsTable: eventStoreMigrationsTable,
      poolMax: this.maxConcurrentBatches + 6,
      log: (message: string) => this.logger.warn(message),
    });
    this.store = new EventStore(this.database.knex, s.upcasters!);
    this.logger.info(
      `Event store ready on ${this.database.embedded ? `PGlite (${s.pgliteDir})` : "PostgreSQL"}, schema ${s.schema}`,
    );
  },

  async stopped() {
    // Services stop all at once: let the local processors release their leases first (bounded).
    // (Only processors that run: a service that never started — a stop during start-up — has none to release.)
    const processors = this.broker.services.filter((s: any) => s !== this && s.processorDone && s.processorLoop).map((s: any) => s.processorDone);
    await Promise.race([Promise.all(processors), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    if (this.inFlight > 0 || this.queue.length > 0) {
      await new Promise<void>((resolve) => (this.signalIdle = resolve));
    }
    this.closed = true;
    await this.database?.close();
  },
};

export default EventStoreService;
