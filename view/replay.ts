// Replay: rebuilds the view from position zero into a new generation while the current one keeps answering,
// then switches between two live batches of the processor; no query sees a half-built generation. The old
// generation is dropped a little later, so that queries that started on it can finish.
import type { RecordedEvent } from "../stores/event-store.ts";
import { START_TOKEN } from "../lib/tokens.ts";
import { ensureIndexes, generationCollections } from "./generations.ts";
import { applyEvents, atomically, type ViewProjection } from "./projection.ts";
import type { ViewStore } from "./stores/store.ts";

export interface ReplayState {
  status: "running" | "done" | "failed";
  fromGeneration: number;
  generation: number;
  startedAt: string;
  finishedAt: string | null;
  eventsApplied: number;
  eventsPerSecond: number;
  globalPosition: number;
  headPosition: number;
  percent: number;
  error: string | null;
}

export interface ReplayOptions {
  store: ViewStore;
  /** The live projection: its meta names the generation replayed from, and takes the new one at the switch. */
  projection: ViewProjection;
  /** The event store: a batch after a token, and the head's global position. */
  readAll(after: string): Promise<{ events: RecordedEvent[]; caughtUp: boolean }>;
  head(): Promise<number>;
  /** Runs `work` between two batches of the live processor. */
  betweenBatches(work: () => Promise<void>): Promise<void>;
  /** Moves the live processor's token (after the switch). */
  moveToken(token: string, globalPosition: number): Promise<void>;
  /** Told once the new generation is live. */
  switched(generation: number): void;
  log: { info(message: string): void; error(message: string, err: unknown): void };
  /** The old generation is dropped this long after the switch, ms. */
  dropDelayMs: number;
}

/** Starts a replay into the next generation; the state it returns is updated as it runs. */
export function startReplay(options: ReplayOptions): ReplayState {
  const { store, projection, log } = options;
  const from = projection.meta.generation;
  const generation = from + 1;
  const state: ReplayState = {
    status: "running",
    fromGeneration: from,
    generation,
    startedAt: new Date().toISOString(),
    finishedAt: null,
    eventsApplied: 0,
    eventsPerSecond: 0,
    globalPosition: 0,
    headPosition: 0,
    percent: 0,
    error: null,
  };
  const started = Date.now();
  let token = START_TOKEN;
  const apply = async (events: RecordedEvent[]) => {
    // One transaction per batch where the store has them: one commit instead of one per statement.
    await atomically(store, () => applyEvents(store, events, generation));
    token = events[events.length - 1]!.token;
    state.eventsApplied += events.length;
    state.globalPosition = events[events.length - 1]!.globalPosition;
    state.eventsPerSecond = Math.round(state.eventsApplied / Math.max(0.001, (Date.now() - started) / 1000));
    state.percent = state.headPosition > 0 ? Math.min(100, Math.round((state.globalPosition / state.headPosition) * 1000) / 10) : 100;
  };
  // The next batch is read while this one is written: the event store's read and the view's write overlap.
  const read = (after: string) => {
    const batch = options.readAll(after);
    batch.catch(() => undefined); // awaited below; a batch read ahead of a failed write is dropped unobserved
    return batch;
  };
  const drain = async () => {
    let next = read(token);
    for (;;) {
      const batch = await next;
      if (!batch.caughtUp) next = read(batch.events.length > 0 ? batch.events[batch.events.length - 1]!.token : token);
      if (batch.events.length > 0) await apply(batch.events);
      if (batch.caughtUp) return;
    }
  };
  const run = async () => {
    state.headPosition = await options.head();
    await store.drop(generationCollections(generation));
    await ensureIndexes(store, generation);
    log.info(`View replay into generation ${generation} started (head at #${state.headPosition})`);
    await drain();
    // Between two live batches: catch up the rest, then switch; the live processor continues from there.
    await options.betweenBatches(async () => {
      await drain();
      // The switch itself is the new generation in the view's meta (stored even when the token did not move:
      // a node that starts later must read generation N+1, never the old one that is about to be dropped).
      await projection.setMeta({ ...projection.meta, generation, token, globalPosition: state.globalPosition });
      await options.moveToken(token, state.globalPosition);
    });
    state.status = "done";
    state.percent = 100;
    state.finishedAt = new Date().toISOString();
    options.switched(generation);
    log.info(`View generation ${generation} is live: ${state.eventsApplied} events replayed at ${state.eventsPerSecond} events/s`);
    setTimeout(() => {
      void store.drop(generationCollections(from)).catch(() => undefined);
    }, options.dropDelayMs).unref();
  };
  run().catch((err: Error) => {
    state.status = "failed";
    state.error = err.message;
    log.error(`View replay into generation ${generation} failed`, err);
  });
  return state;
}
