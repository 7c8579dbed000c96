// Service `eventstore`: the source of truth. Owns the PostgreSQL (or PGlite) event store, validates appends,
// groups concurrent appends into one transaction (group commit), wakes consumers with `eventstore.appended`
// after each commit, and keeps the tracking processors' tokens and leases. The logic lives in stores/event-log.ts
// (appends, group commit, guarded reads) and stores/event-store.ts (SQL); this is its Moleculer shell.
import type { ServiceSettingSchema } from "moleculer";
import { readEnvironment } from "../lib/env.ts";
import { asDependencyOutage, notFound } from "../lib/errors.ts";
import { START_TOKEN, TOKEN_PATTERN } from "../lib/tokens.ts";
import type { Upcasters } from "../lib/upcasting.ts";
import { eventStoreMigrations, eventStoreMigrationsTable } from "../migrations/event-store.ts";
import { embeddedDatabaseDirectory, openDatabase, type Database } from "../stores/database.ts";
import { EventStore } from "../stores/event-store.ts";
import { EventLog, type AppendResult } from "../stores/event-log.ts";
import { domainUpcasters } from "../domain/upcasters.ts";
import { runningProcessorDone } from "../mixins/tracking-processor.mixin.ts";
import { defineService } from "../lib/schema.ts";
import type { ActionContext } from "../lib/actions.ts";

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

/** The settings with every default filled in (by `created`). */
type ResolvedSettings = Required<Omit<EventStoreSettings, keyof ServiceSettingSchema | "databaseUrl">> & { databaseUrl: string | null };

interface Locals {
  config: ResolvedSettings;
  /** Open between `started` and `stopped`. */
  database: Database | undefined;
  store: EventStore;
  log: EventLog;
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

const EventStoreService = defineService<EventStoreSettings, Record<never, never>, Locals>({
  name: "eventstore",
  settings: {},

  hooks: {
    // A database outage reaches callers as a typed, retryable 503 (never a raw driver error such as 57P03).
    error: { "*": (_ctx, err) => Promise.reject(asDependencyOutage(err, "The event store database")) },
  },

  actions: {
    append: {
      params: {
        streamId: { type: "string", min: 1, max: 300 },
        expectedVersion: { type: "number", integer: true, min: 0, optional: true, nullable: true },
        commandId: { type: "string", min: 1, max: 300, optional: true, nullable: true },
        events: { type: "array", min: 1, max: 1000, items: eventParams },
      },
      handler(ctx: ActionContext<"eventstore.append">): Promise<AppendResult> {
        return this.log.append(ctx.params);
      },
    },

    readStream: {
      params: {
        streamId: { type: "string", min: 1, max: 300 },
        fromVersion: { type: "number", integer: true, min: 1, optional: true, convert: true },
        maxCount: { type: "number", integer: true, min: 1, max: 10_000, optional: true, convert: true },
        allowEmpty: { type: "boolean", optional: true },
      },
      async handler(ctx: ActionContext<"eventstore.readStream">) {
        const { streamId, fromVersion = 1, maxCount = 10_000, allowEmpty = false } = ctx.params;
        const { streamVersion, events } = await this.log.read(() => this.store.readStream(streamId, fromVersion, maxCount));
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
      handler(ctx: ActionContext<"eventstore.readAll">) {
        const { limit = 1000, after = START_TOKEN, eventTypes, streamPrefix } = ctx.params;
        // A reply must stay well below the transporter's largest message (NATS: 1 MiB), whatever the events weigh.
        const maxBytes = Math.min(ctx.params.maxBytes ?? this.config.maxReadBytes, this.config.maxReadBytes);
        return this.log.read(() => this.store.readAll({ after, limit, maxBytes, eventTypes, streamPrefix }));
      },
    },

    head() {
      return this.log.read(() => this.store.head());
    },
    /** How many events lie after a token (counting stops at `cap`): a consumer's lag. */
    countAfter: {
      params: { token: { type: "string", pattern: TOKEN_PATTERN }, cap: { type: "number", integer: true, min: 1, max: 10_000_000, optional: true, convert: true } },
      async handler(ctx: ActionContext<"eventstore.countAfter">) {
        return { count: await this.log.read(() => this.store.countAfter(ctx.params.token, ctx.params.cap ?? 100_000)) };
      },
    },

    tokenOf: {
      params: { globalPosition: { type: "number", integer: true, min: 1, convert: true } },
      async handler(ctx: ActionContext<"eventstore.tokenOf">) {
        return { token: await this.log.read(() => this.store.tokenOf(ctx.params.globalPosition)) };
      },
    },

    // ---- tracking processors (used by mixins/tracking-processor.mixin.ts) ----

    claimProcessor: {
      params: { name: "string", owner: "string", leaseMs: { type: "number", integer: true, min: 100 } },
      handler(ctx: ActionContext<"eventstore.claimProcessor">) {
        return this.log.read(() => this.store.claimProcessor(ctx.params.name, ctx.params.owner, ctx.params.leaseMs));
      },
    },
    renewProcessor: {
      params: { name: "string", owner: "string", leaseMs: { type: "number", integer: true, min: 100 }, token: { type: "string", optional: true, nullable: true } },
      handler(ctx: ActionContext<"eventstore.renewProcessor">) {
        return this.log.read(() => this.store.renewProcessor(ctx.params.name, ctx.params.owner, ctx.params.leaseMs, ctx.params.token ?? null));
      },
    },
    saveProcessorToken: {
      params: { name: "string", owner: "string", token: "string" },
      handler(ctx: ActionContext<"eventstore.saveProcessorToken">) {
        return this.log.read(() => this.store.saveProcessorToken(ctx.params.name, ctx.params.owner, ctx.params.token));
      },
    },
    releaseProcessor: {
      params: { name: "string", owner: "string", status: { type: "string", optional: true }, lastError: { type: "string", optional: true, nullable: true } },
      async handler(ctx: ActionContext<"eventstore.releaseProcessor">) {
        const { name, owner, status = "idle", lastError = null } = ctx.params;
        await this.log.read(() => this.store.releaseProcessor(name, owner, status, lastError));
        return true;
      },
    },
    processorStatus: {
      params: { name: "string", owner: "string", status: "string", lastError: { type: "string", optional: true, nullable: true } },
      async handler(ctx: ActionContext<"eventstore.processorStatus">) {
        await this.log.read(() => this.store.setProcessorStatus(ctx.params.name, ctx.params.owner, ctx.params.status, ctx.params.lastError ?? null));
        return true;
      },
    },
    restartProcessor: {
      params: { name: "string" },
      async handler(ctx: ActionContext<"eventstore.restartProcessor">) {
        await this.log.read(() => this.store.restartProcessor(ctx.params.name));
        return true;
      },
    },
    resetProcessor: {
      params: { name: "string", token: { type: "string", optional: true } },
      async handler(ctx: ActionContext<"eventstore.resetProcessor">) {
        await this.log.read(() => this.store.resetProcessor(ctx.params.name, ctx.params.token ?? START_TOKEN));
        return true;
      },
    },
    parkEvent: {
      params: { processor: "string", event: "object", error: "string", attempts: { type: "number", integer: true } },
      async handler(ctx: ActionContext<"eventstore.parkEvent">) {
        await this.log.read(() => this.store.parkEvent(ctx.params.processor, ctx.params.event, ctx.params.error, ctx.params.attempts));
        return true;
      },
    },
    parkedEvents: {
      params: { processor: "string" },
      handler(ctx: ActionContext<"eventstore.parkedEvents">) {
        return this.log.read(() => this.store.parkedEvents(ctx.params.processor));
      },
    },
    /** Every processor with its position and lag (events after its token, counted up to 100,000). */
    processors() {
      return this.log.processors();
    },
  },

  created() {
    const env = readEnvironment();
    const s = this.settings;
    const databaseUrl = s.databaseUrl === undefined ? env.databaseUrl : s.databaseUrl;
    this.config = {
      databaseUrl,
      pgliteDir: s.pgliteDir ?? embeddedDatabaseDirectory(env.dataDir),
      schema: s.schema ?? "eventstore",
      // Every event travels in one transporter message (the append, and a readAll reply): NATS carries 1 MiB at most.
      maxEventBytes: s.maxEventBytes ?? env.eventMaxBytes,
      maxReadBytes: s.maxReadBytes ?? 256 * 1024,
      maxBatch: s.maxBatch ?? 256,
      maxConcurrentBatches: s.maxConcurrentBatches ?? (databaseUrl ? 4 : 1),
      upcasters: s.upcasters ?? domainUpcasters,
    };
    Object.assign(s, this.config); // the settings show what the service runs with
  },

  async started() {
    const c = this.config;
    this.database = await openDatabase({
      url: c.databaseUrl,
      pgliteDir: c.pgliteDir === "memory" ? null : c.pgliteDir,
      schema: c.schema,
      migrations: eventStoreMigrations,
      migrationsTable: eventStoreMigrationsTable,
      poolMax: c.maxConcurrentBatches + 6,
      log: (message: string) => this.logger.warn(message),
    });
    this.store = new EventStore(this.database.knex, c.upcasters);
    this.log = new EventLog(this.store, {
      maxEventBytes: c.maxEventBytes,
      currentVersion: (type) => c.upcasters.currentVersion(type),
      maxBatch: c.maxBatch,
      maxConcurrentBatches: c.maxConcurrentBatches,
      // A wake-up for consumers; losing it costs them latency (they also poll), never an event. The types let
      // a consumer that reads only some of them sleep on.
      onAppended: (notice) => void this.broker.broadcast("eventstore.appended", notice),
    });
    this.logger.info(`Event store ready on ${this.database.embedded ? `PGlite (${c.pgliteDir})` : "PostgreSQL"}, schema ${c.schema}`);
  },

  async stopped() {
    // Services stop all at once: let the local processors release their leases first (bounded).
    // (Only processors that run: a service that never started — a stop during start-up — has none to release.)
    const processors = this.broker.services.filter((s) => s !== this).flatMap((s) => runningProcessorDone(s) ?? []);
    await Promise.race([Promise.all(processors), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    await this.log?.close();
    await this.database?.close();
  },
});

export default EventStoreService;
