// Tracking processor: a durable, resumable consumer of the event store's global log, for every service that
// reacts to events (the view, engine connectors, …).
//
// - One instance per processor name runs in the cluster: it holds a lease in the event store, renews it while
//   it runs, and another instance takes over within `leaseMs` after the holder dies.
// - It catches up in batches after its stored token, then waits for the `eventstore.appended` wake-up, with a
//   slow poll as fallback: a lost wake-up costs latency, never an event.
// - Delivery is at least once (a crash between handling and storing the token repeats a batch), so handlers
//   are idempotent.
// - A failing batch is retried with backoff; then its events are handled one by one to find the failing one,
//   which is retried too and then either parks (recorded in the event store, processing goes on) or stops the
//   processor cluster-wide until it is restarted, as configured. The log names the failing event.
//
// The service provides `handleEvents(events, { replaying })`. It may override `loadProcessorToken(token)` and
// `storeProcessorToken(token)` to keep its token next to its own data, and `onProcessorReset()` to drop data.
// Moleculer runs a service's own `stopped` before its mixins' — a service that closes what its handler uses
// calls `await this.stopProcessorLoop()` first (stopping twice is harmless).
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { randomUUID } from "node:crypto";
import type { RecordedEvent } from "../stores/event-store.ts";
import { callAction } from "../lib/actions.ts";
import { compareTokens, parseToken, START_TOKEN } from "../lib/tokens.ts";
import { ErrorTypes, isDependencyOutage, isErrorOfType } from "../lib/errors.ts";
import { sleep } from "../lib/sleep.ts";
import { defineMixin } from "../lib/schema.ts";

export interface TrackingProcessorOptions {
  /** Processor name, unique in the cluster. */
  processor: string;
  batchSize?: number;
  pollIntervalMs?: number;
  leaseMs?: number;
  /** Attempts per batch and per event before giving up on it. */
  attempts?: number;
  retryDelayMs?: number;
  onError?: "stop" | "park";
  eventTypes?: string[];
  streamPrefix?: string;
}

export interface ProcessorState {
  name: string;
  owner: string;
  leased: boolean;
  status: "starting" | "waiting-for-lease" | "catching-up" | "live" | "failed" | "stopped";
  token: string;
  globalPosition: number;
  eventsHandled: number;
  lastBatchAt: string | null;
  lastError: string | null;
}

export interface HandleContext {
  /** True while the processor re-reads events it had handled before a reset. */
  replaying: boolean;
}

/** A service may run the processor under another name, e.g. a second view. */
export interface TrackingProcessorSettings extends ServiceSettingSchema {
  processorName?: string;
}

export type ResolvedProcessorOptions = Required<Omit<TrackingProcessorOptions, "eventTypes" | "streamPrefix">> &
  Pick<TrackingProcessorOptions, "eventTypes" | "streamPrefix">;

interface ExclusiveWork {
  work: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** The mixin's state on the service. */
export interface TrackingProcessorLocals {
  processorSettings: ResolvedProcessorOptions;
  processor: ProcessorState;
  /** While replaying after a reset: the token the processor had reached before. */
  processorReplayUntil: string | null;
  processorExclusive: ExclusiveWork[];
  /** Resolved once this processor has stopped and released its lease; a local event store waits for it. */
  processorDone: Promise<void>;
  markProcessorDone: () => void;
  processorWake?: AbortController;
  processorStop?: AbortController;
  processorLoop?: Promise<void>;
  processorRenewTimer?: NodeJS.Timeout;
}

/** The mixin's methods, and the one the service provides (`handleEvents`). */
/** The actions a processor's service forwards to the instance that holds the lease. */
export type ForwardedAction = "resetProcessor" | "replay" | "replayStatus";

export interface TrackingProcessorMethods {
  handleEvents(events: RecordedEvent[], context: HandleContext): Promise<void>;
  loadProcessorToken(token: string): Promise<string>;
  storeProcessorToken(token: string): Promise<void>;
  onProcessorReset(): Promise<void>;
  wakeProcessor(): void;
  runBetweenBatches<T>(work: () => Promise<T>): Promise<T>;
  requestProcessorReset(): Promise<void>;
  moveProcessorToken(token: string, globalPosition: number): Promise<void>;
  forwardToLeaseHolder(ctx: Context, action: ForwardedAction): Promise<{ forwarded: boolean; result?: unknown }>;
  loseLease(reason: string): void;
  startProcessorLoop(): void;
  stopProcessorLoop(): Promise<void>;
  runProcessor(stop: AbortSignal): Promise<void>;
  handleBatch(events: RecordedEvent[], stop: AbortSignal): Promise<boolean>;
  renewProcessorLease(): Promise<void>;
}

/** `this` of a service that mixes the tracking processor in. */
export type TrackingProcessorService = Service<TrackingProcessorSettings> & TrackingProcessorLocals & TrackingProcessorMethods;

/** For a local service whose processor loop runs: the promise that resolves once it stopped and let go its lease. */
export function runningProcessorDone(service: Service): Promise<void> | undefined {
  const s = service as Partial<TrackingProcessorLocals>;
  return s.processorDone && s.processorLoop ? s.processorDone : undefined;
}


function describe(event: RecordedEvent): string {
  return `#${event.globalPosition} ${event.type} (stream ${event.streamId}, version ${event.streamVersion})`;
}

export function TrackingProcessorMixin(options: TrackingProcessorOptions): Partial<ServiceSchema> {
  const settings: ResolvedProcessorOptions = {
    batchSize: 500,
    pollIntervalMs: 2000,
    leaseMs: 10_000,
    attempts: 3,
    retryDelayMs: 200,
    onError: "stop",
    ...options,
  };

  return defineMixin<TrackingProcessorSettings, TrackingProcessorMethods, TrackingProcessorLocals>({
    dependencies: ["eventstore"],
    events: {
      "eventstore.appended": {
        context: true,
        handler(ctx: Context<{ types?: string[] }>) {
          const wanted = this.processorSettings.eventTypes;
          if (wanted && ctx.params.types && !ctx.params.types.some((type) => wanted.includes(type))) return;
          this.wakeProcessor();
        },
      },
    },

    actions: {
      /** This instance's view of the processor: lease, status, token. */
      processorState: {
        visibility: "public",
        handler(): ProcessorState {
          return { ...this.processor };
        },
      },
      /** Handles the whole log again; the call is forwarded to the instance that holds the lease. */
      resetProcessor: {
        visibility: "public",
        async handler(ctx: Context) {
          const forwarded = await this.forwardToLeaseHolder(ctx, "resetProcessor");
          if (forwarded.forwarded) return forwarded.result;
          await this.requestProcessorReset();
          return { ...this.processor };
        },
      },
      /** Lets a processor that stopped on a failing event run again (cluster-wide). */
      restartProcessor: {
        visibility: "public",
        async handler(ctx: Context) {
          await callAction(ctx, "eventstore.restartProcessor", { name: this.processorSettings.processor });
          if (this.processor.status === "failed") this.startProcessorLoop();
          return { ...this.processor };
        },
      },
    },

    methods: {
      async loadProcessorToken(token: string): Promise<string> {
        return token;
      },

      async storeProcessorToken(token: string): Promise<void> {
        const kept = await callAction(this.broker, "eventstore.saveProcessorToken", { name: this.processorSettings.processor, owner: this.processor.owner, token });
        if (!kept) this.loseLease("the token could not be stored: another instance holds the lease");
      },

      async onProcessorReset(): Promise<void> {},

      wakeProcessor() {
        this.processorWake?.abort();
      },

      /**
       * Runs `work` on this instance between two batches, when no batch is in flight, so that it may replace the
       * token or the handler's data without a batch storing an older token over it. Waits for the lease.
       */
      runBetweenBatches<T>(work: () => Promise<T>): Promise<T> {
        return new Promise<T>((resolve, reject) => {
          this.processorExclusive.push({ work, resolve: (value) => resolve(value as T), reject });
          this.wakeProcessor();
        });
      },

      /** Drops the token to the start of the log and handles everything again. */
      requestProcessorReset(): Promise<void> {
        return this.runBetweenBatches(async () => {
          const p: ProcessorState = this.processor;
          // Events up to the old token are handled a second time: handlers may tell (HandleContext.replaying).
          this.processorReplayUntil = p.token === START_TOKEN ? null : p.token;
          await this.onProcessorReset();
          await this.storeProcessorToken(START_TOKEN);
          p.token = START_TOKEN;
          p.globalPosition = 0;
          p.eventsHandled = 0;
          this.logger.info(`Processor ${this.processorSettings.processor} reset: handling the log again from the start`);
        });
      },

      /** Moves the token (after work done between batches replaced what the handler had built). */
      async moveProcessorToken(token: string, globalPosition: number): Promise<void> {
        await this.storeProcessorToken(token);
        this.processor.token = token;
        this.processor.globalPosition = globalPosition;
      },

      /** Calls the same action on the instance that holds the lease, when this one does not. */
      async forwardToLeaseHolder(ctx: Context, action: ForwardedAction): Promise<{ forwarded: boolean; result?: unknown }> {
        if (this.processor.leased) return { forwarded: false };
        const rows = await callAction(ctx, "eventstore.processors", {});
        const holder = rows.find((row) => row.name === this.processorSettings.processor)?.owner;
        if (!holder) throw new Error(`Processor ${this.processorSettings.processor} runs nowhere at the moment; start it first`);
        // The same call again, to this service's own action on the holder's node: its name depends on the service
        // that mixes the processor in (view, an application's connector), its params are the caller's, its result
        // goes back as it is — so Moleculer's untyped call, not lib/actions.ts.
        return { forwarded: true, result: await ctx.call(`${this.fullName}.${action}`, ctx.params, { nodeID: holder.split("/")[0] }) };
      },

      loseLease(reason: string) {
        if (!this.processor.leased) return;
        this.logger.warn(`Processor ${this.processorSettings.processor} lost its lease (${reason}); another instance continues`);
        this.processor.leased = false;
        this.processor.status = "waiting-for-lease";
        this.wakeProcessor();
      },

      startProcessorLoop() {
        this.processorStop = new AbortController();
        this.processorLoop = this.runProcessor(this.processorStop.signal).catch((err: Error) => {
          this.logger.error(`Processor ${this.processorSettings.processor} stopped unexpectedly`, err);
        });
      },

      async stopProcessorLoop() {
        this.processorStop?.abort();
        this.wakeProcessor();
        await this.processorLoop;
        clearInterval(this.processorRenewTimer);
        this.processorRenewTimer = undefined;
        if (this.processor.leased) {
          this.processor.leased = false;
          await callAction(this.broker, "eventstore.releaseProcessor", { name: this.processorSettings.processor, owner: this.processor.owner, status: this.processor.status === "failed" ? "failed" : "idle", lastError: this.processor.lastError })
            .catch(() => undefined);
        }
      },

      async runProcessor(stop: AbortSignal) {
        const p: ProcessorState = this.processor;
        while (!stop.aborted) {
          try {
            if (!p.leased) {
              const granted = await callAction(this.broker, "eventstore.claimProcessor", { name: this.processorSettings.processor, owner: p.owner, leaseMs: this.processorSettings.leaseMs });
              if (!granted) {
                p.status = "waiting-for-lease";
                await sleep(this.processorSettings.leaseMs / 2, stop);
                continue;
              }
              p.leased = true;
              p.status = "catching-up";
              p.token = await this.loadProcessorToken(granted.token);
              this.logger.info(`Processor ${this.processorSettings.processor} holds the lease; resuming after ${p.token}`);
              this.processorRenewTimer ??= setInterval(() => void this.renewProcessorLease(), Math.floor(this.processorSettings.leaseMs / 3));
            }
            while (this.processorExclusive.length > 0) {
              const { work, resolve, reject } = this.processorExclusive.shift()!;
              await work().then(resolve, reject);
            }
            const wake = new AbortController();
            this.processorWake = wake;
            const batch = await callAction(this.broker, "eventstore.readAll", {
              after: p.token,
              limit: this.processorSettings.batchSize,
              eventTypes: this.processorSettings.eventTypes,
              streamPrefix: this.processorSettings.streamPrefix,
            });
            if (batch.events.length > 0) {
              const handled = await this.handleBatch(batch.events, stop);
              if (p.status === "failed") break;
              if (!handled || !p.leased) continue;
              p.eventsHandled += batch.events.length;
              p.lastBatchAt = new Date().toISOString();
            }
            // After the last event handled — or further, over events this processor does not read: an idle
            // filtered processor is at the end of the log (lag 0), and its next poll starts there.
            if (batch.next !== p.token && p.leased) {
              await this.storeProcessorToken(batch.next);
              p.token = batch.next;
              p.globalPosition = Number(parseToken(batch.next).globalPosition);
            }
            if (batch.caughtUp) {
              p.status = "live";
              await sleep(this.processorSettings.pollIntervalMs, AbortSignal.any([stop, wake.signal]));
            } else {
              p.status = "catching-up";
            }
          } catch (err) {
            if (stop.aborted) break;
            p.lastError = String((err as Error).message ?? err);
            this.logger.warn(`Processor ${this.processorSettings.processor}: ${p.lastError}; retrying in ${this.processorSettings.pollIntervalMs} ms`);
            await sleep(this.processorSettings.pollIntervalMs, stop);
          }
          if (p.status === "failed") break;
        }
        if (p.status !== "failed") p.status = "stopped";
      },

      /** Handles one batch with retries; returns false when the processor must not advance past it. */
      async handleBatch(events: RecordedEvent[], stop: AbortSignal): Promise<boolean> {
        const replaying = this.processorReplayUntil ? compareTokens(events[events.length - 1]!.token, this.processorReplayUntil) <= 0 : false;
        for (let attempt = 1; attempt <= this.processorSettings.attempts; attempt++) {
          try {
            await this.handleEvents(events, { replaying });
            return true;
          } catch (err) {
            if (stop.aborted) return false;
            if (isDependencyOutage(err) || isErrorOfType(err, ErrorTypes.UNAVAILABLE)) {
              // The database is down, not the batch bad: wait for it without spending an attempt (spending them
              // would stop the processor for good after an outage of a few seconds).
              this.logger.warn(`Processor ${this.processorSettings.processor}: store unavailable (${(err as Error).message}); retrying in ${this.processorSettings.pollIntervalMs} ms`);
              await sleep(this.processorSettings.pollIntervalMs, stop);
              attempt--;
              continue;
            }
            if (attempt === this.processorSettings.attempts) break;
            this.logger.warn(
              `Processor ${this.processorSettings.processor}: batch ${describe(events[0]!)} … ${describe(events[events.length - 1]!)} failed (attempt ${attempt}/${this.processorSettings.attempts}): ${(err as Error).message}`,
            );
            await sleep(this.processorSettings.retryDelayMs * 2 ** (attempt - 1), stop);
          }
        }
        // Find the failing event: handle them one at a time.
        for (const event of events) {
          let lastError: Error | null = null;
          for (let attempt = 1; attempt <= this.processorSettings.attempts; attempt++) {
            try {
              await this.handleEvents([event], { replaying });
              lastError = null;
              break;
            } catch (err) {
              lastError = err as Error;
              if (stop.aborted) return false;
              if (attempt < this.processorSettings.attempts) await sleep(this.processorSettings.retryDelayMs * 2 ** (attempt - 1), stop);
            }
          }
          if (!lastError) continue;
          const message = `event ${describe(event)} failed ${this.processorSettings.attempts} times: ${lastError.message}`;
          if (this.processorSettings.onError === "park") {
            this.logger.error(`Processor ${this.processorSettings.processor}: parking ${message}`);
            await callAction(this.broker, "eventstore.parkEvent", { processor: this.processorSettings.processor, event, error: lastError.message, attempts: this.processorSettings.attempts });
            continue;
          }
          this.logger.error(`Processor ${this.processorSettings.processor}: stopping; ${message}`);
          const p: ProcessorState = this.processor;
          p.status = "failed";
          p.lastError = message;
          // Keep what was handled before the failing event.
          const index = events.indexOf(event);
          if (index > 0) {
            const before = events[index - 1]!;
            await this.storeProcessorToken(before.token);
            p.token = before.token;
            p.globalPosition = before.globalPosition;
          }
          await callAction(this.broker, "eventstore.releaseProcessor", { name: this.processorSettings.processor, owner: p.owner, status: "failed", lastError: message });
          p.leased = false;
          clearInterval(this.processorRenewTimer);
          this.processorRenewTimer = undefined;
          return false;
        }
        return true;
      },

      async renewProcessorLease() {
        const p: ProcessorState = this.processor;
        if (!p.leased) return;
        try {
          const kept = await callAction(this.broker, "eventstore.renewProcessor", { name: this.processorSettings.processor, owner: p.owner, leaseMs: this.processorSettings.leaseMs, token: p.token });
          if (!kept) this.loseLease("renewal refused");
        } catch (err) {
          this.logger.warn(`Processor ${this.processorSettings.processor}: lease renewal failed: ${(err as Error).message}`);
        }
      },
    },

    created() {
      // A service may run the processor under another name (settings.processorName), e.g. a second view.
      this.processorSettings = { ...settings, processor: this.settings?.processorName ?? settings.processor };
      this.processor = {
        name: this.processorSettings.processor,
        owner: `${this.broker.nodeID}/${this.name}/${randomUUID().slice(0, 8)}`,
        leased: false,
        status: "starting",
        token: START_TOKEN,
        globalPosition: 0,
        eventsHandled: 0,
        lastBatchAt: null,
        lastError: null,
      } satisfies ProcessorState;
      this.processorReplayUntil = null;
      this.processorExclusive = [];
      // Resolved once this processor has stopped and released its lease; a local event store waits for it.
      this.processorDone = new Promise<void>((resolve) => (this.markProcessorDone = resolve));
    },

    async started() {
      this.startProcessorLoop();
    },

    async stopped() {
      try {
        await this.stopProcessorLoop();
      } finally {
        this.markProcessorDone();
      }
    },
  });
}
