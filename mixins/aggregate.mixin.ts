// Aggregate command handling, shared by the five command services (task, dataEntry, processDefinition,
// processInstance, processVariable).
//
// A command action: loads the aggregate's stream (or takes its folded state from a bounded in-memory cache on
// this node), runs the pure decider, appends the resulting events with the expected stream version, and on a
// version conflict drops the cached state, reloads and decides again, a bounded number of times. Commands for
// one aggregate are serialized on its node, and every command action uses a `Shard` strategy (lib/strategies.ts) keyed
// by the aggregate id, so that in a cluster each aggregate has one home node whose cache stays warm — the way
// Axon Server routes commands by consistent hashing. A `commandId` makes a command idempotent: the event store
// returns the first result for a command it has seen.
import type { ActionSchema, Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DomainError, type CommandResult, type Decider, type DomainEvent } from "../domain/decider.ts";
import { conflict, notFound } from "../lib/errors.ts";
import type { AppendResult } from "../stores/event-log.ts";
import { callAction } from "../lib/actions.ts";
import type { JsonObject } from "../lib/json.ts";
import { AGGREGATE_SHARD } from "../lib/strategies.ts";
import { KeyedSerialQueue } from "../lib/serial.ts";
import { defineMixin } from "../lib/schema.ts";

export type { CommandResult } from "../domain/decider.ts";

/**
 * A command action's params after validation. Their static type is what the definition's `params` schema
 * guarantees: a definition names the fields it reads (`CommandDefinition<{ id: string } & CommandParams>`).
 */
export type CommandParams = Record<string, unknown> & { commandId?: string };

/** What a command takes from the caller's context: the signed-in user, when a gateway passes one on. */
export interface CommandMeta {
  user?: { username?: string };
}

export interface CommandDefinition<P extends CommandParams = CommandParams> {
  /** fastest-validator schema of the action's params (also the source of the OpenAPI document). */
  params: Record<string, unknown>;
  /** Path of the aggregate id in the params: the shard key. */
  shardKey: string;
  aggregateId(params: P): string;
  /** The decider's command; its fields are the validated params, so its type is the decider's to check. */
  command(params: P, ctx: Context<P, CommandMeta>): { type: string };
  description?: string;
  /**
   * The command usually creates its aggregate (task.create, processInstance.start): when the aggregate is not
   * cached, decide on the initial state and append expecting a new stream, reading the stream only if that
   * conflicts — one round trip to the store instead of two for the common case.
   */
  usuallyCreates?: boolean;
}

export interface AggregateOptions<C extends { type: string }, S, E extends DomainEvent> {
  /** Aggregate name, used in messages. */
  aggregate: string;
  decider: Decider<C, S, E>;
  streamId(aggregateId: string): string;
  commands: Record<string, CommandDefinition>;
  /** Folded aggregates kept per node. */
  cacheSize?: number;
  /** Decide-and-append attempts before a persistent conflict is reported. */
  maxAttempts?: number;
}

export interface Loaded<S> {
  state: S;
  version: number;
  globalPosition: number;
}

/** A small LRU: a Map keeps insertion order, so the first key is the least recently used. */
export class StateCache<S> {
  private readonly entries = new Map<string, Loaded<S>>();
  private readonly capacity: number;
  constructor(capacity: number) {
    this.capacity = capacity;
  }
  get(id: string): Loaded<S> | undefined {
    const entry = this.entries.get(id);
    if (entry) {
      this.entries.delete(id);
      this.entries.set(id, entry);
    }
    return entry;
  }
  set(id: string, entry: Loaded<S>): void {
    this.entries.delete(id);
    this.entries.set(id, entry);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
  delete(id: string): void {
    this.entries.delete(id);
  }
  get size(): number {
    return this.entries.size;
  }
}

const PAGE = 10_000;

/** The mixin's state on the service. */
export interface AggregateLocals<S> {
  aggregateCache: StateCache<S>;
  aggregateQueue: KeyedSerialQueue;
}

/** The mixin's methods; a service that mixes it in may call `loadAggregate` for queries on the folded state. */
export interface AggregateMethods<C, S> {
  runSerialized(aggregateId: string, work: () => Promise<CommandResult>): Promise<CommandResult>;
  loadAggregate(aggregateId: string, ctx: Context): Promise<Loaded<S>>;
  executeCommand(aggregateId: string, command: C, ctx: Context<CommandParams, CommandMeta>, usuallyCreates: boolean): Promise<CommandResult>;
}

/** `this` of a service that mixes the aggregate in. */
export type AggregateService<C, S> = Service & AggregateLocals<S> & AggregateMethods<C, S>;

export function AggregateMixin<C extends { type: string }, S, E extends DomainEvent>(options: AggregateOptions<C, S, E>): Partial<ServiceSchema> {
  const maxAttempts = options.maxAttempts ?? 5;
  const actions: Record<string, ActionSchema<AggregateService<C, S>> & { description?: string }> = {};
  for (const [name, definition] of Object.entries(options.commands)) {
    actions[name] = {
      description: definition.description,
      params: {
        ...definition.params,
        commandId: { type: "string", min: 1, max: 300, optional: true },
      },
      strategy: AGGREGATE_SHARD,
      strategyOptions: { shardKey: definition.shardKey },
      async handler(ctx: Context<CommandParams, CommandMeta>): Promise<CommandResult> {
        const aggregateId = definition.aggregateId(ctx.params);
        // The params schema validated the command's fields.
        const command = definition.command(ctx.params, ctx) as C;
        return this.runSerialized(aggregateId, () => this.executeCommand(aggregateId, command, ctx, definition.usuallyCreates === true));
      },
    };
  }

  return defineMixin<ServiceSettingSchema, AggregateMethods<C, S>, AggregateLocals<S>>({
    dependencies: ["eventstore"],
    actions,

    methods: {
      /** Runs `work` after every earlier command for the same aggregate on this node has finished. */
      runSerialized(aggregateId: string, work: () => Promise<CommandResult>): Promise<CommandResult> {
        return this.aggregateQueue.run(aggregateId, work);
      },

      async loadAggregate(aggregateId: string, ctx: Context): Promise<Loaded<S>> {
        const cached = this.aggregateCache.get(aggregateId);
        if (cached) return cached;
        const streamId = options.streamId(aggregateId);
        let state = options.decider.initialState;
        let version = 0;
        let globalPosition = 0;
        for (;;) {
          const page = await callAction(ctx, "eventstore.readStream", {
            streamId,
            fromVersion: version + 1,
            maxCount: PAGE,
            allowEmpty: true,
          });
          for (const event of page.events) {
            state = options.decider.evolve(state, { type: event.type, data: event.data } as unknown as E);
            version = event.streamVersion;
            globalPosition = event.globalPosition;
          }
          if (page.events.length < PAGE) break;
        }
        const loaded = { state, version, globalPosition };
        this.aggregateCache.set(aggregateId, loaded);
        return loaded;
      },

      async executeCommand(aggregateId: string, command: C, ctx: Context<CommandParams, CommandMeta>, usuallyCreates: boolean): Promise<CommandResult> {
        const streamId = options.streamId(aggregateId);
        const commandId = ctx.params.commandId;
        for (let attempt = 1; attempt <= maxAttempts; attempt++) {
          const assumeNew = usuallyCreates && attempt === 1 && !this.aggregateCache.get(aggregateId);
          const loaded: Loaded<S> = assumeNew
            ? { state: options.decider.initialState, version: 0, globalPosition: 0 }
            : await this.loadAggregate(aggregateId, ctx);
          let events: E[];
          try {
            events = options.decider.decide(command, loaded.state);
          } catch (err) {
            if (err instanceof DomainError) {
              throw err.kind === "NOT_FOUND"
                ? notFound(err.message, { aggregate: options.aggregate, aggregateId, ...err.details })
                : conflict(err.message, { aggregate: options.aggregate, aggregateId, ...err.details });
            }
            throw err;
          }
          if (events.length === 0) {
            return { aggregateId, version: loaded.version, globalPosition: loaded.globalPosition, events: [] };
          }
          const metadata = {
            commandType: command.type,
            ...(commandId ? { commandId } : {}),
            ...(ctx.meta?.user?.username ? { actor: ctx.meta.user.username } : {}),
            correlationId: ctx.requestID,
            node: this.broker.nodeID,
          };
          let appended: AppendResult;
          try {
            appended = await callAction(ctx, "eventstore.append", {
              streamId,
              expectedVersion: loaded.version,
              commandId,
              // Plain JSON by the deciders' construction; the event store checks it.
              events: events.map((event) => ({ type: event.type, data: event.data as JsonObject, metadata })),
            });
          } catch (err) {
            if ((err as { type?: string }).type === "CONFLICT") {
              this.aggregateCache.delete(aggregateId);
              continue;
            }
            throw err;
          }
          if (appended.duplicate) {
            // Seen before: the state we hold may be older than the store's.
            this.aggregateCache.delete(aggregateId);
            return { aggregateId, version: appended.streamVersion, globalPosition: appended.globalPosition, events: [] };
          }
          const state = events.reduce((s, event) => options.decider.evolve(s, event), loaded.state);
          this.aggregateCache.set(aggregateId, { state, version: appended.streamVersion, globalPosition: appended.globalPosition });
          return {
            aggregateId,
            version: appended.streamVersion,
            globalPosition: appended.globalPosition,
            events: events.map((event) => event.type),
          };
        }
        throw conflict(`${options.aggregate} ${aggregateId} kept changing concurrently; gave up after ${maxAttempts} attempts`, {
          aggregate: options.aggregate,
          aggregateId,
        });
      },
    },

    created() {
      this.aggregateCache = new StateCache<S>(options.cacheSize ?? 10_000);
      this.aggregateQueue = new KeyedSerialQueue();
    },
  });
}
