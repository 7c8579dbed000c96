// Endpoint selection for the whole cluster.
//
// Moleculer's `registry.preferLocal` short-cuts every strategy, including `Shard`, whenever the calling node
// hosts the action itself. Command actions must reach the aggregate's one home node (as Axon Server routes
// commands by consistent hashing), so the broker runs with `preferLocal: false` and this strategy restores
// "local first, else round-robin" for every other action and balanced event.
import { Strategies } from "moleculer";

type RoundRobinSelect = InstanceType<typeof Strategies.RoundRobin>["select"];

export class LocalFirstStrategy extends Strategies.RoundRobin {
  override select(list: Parameters<RoundRobinSelect>[0]): ReturnType<RoundRobinSelect> {
    return list.find((endpoint) => endpoint.local) ?? super.select(list);
  }
}

type ShardSelect = InstanceType<typeof Strategies.Shard>["select"];
type ShardEndpoint = Parameters<ShardSelect>[0][number];

/**
 * Moleculer's `Shard` strategy rebuilds its hash ring only on `$node.*` events, from the endpoint list it gets
 * at that moment. An endpoint that leaves the list for another reason (its circuit breaker opened) stays on the
 * ring, and the keys hashed to it fail with a 500 "Strategy returned an invalid endpoint" instead of moving to
 * another node. This one rebuilds whenever the set of available endpoints differs from the ring's, so an
 * aggregate's commands move to a live node the moment its home node is marked offline or unavailable, and come
 * back when it returns.
 */
export class AggregateShardStrategy extends Strategies.Shard {
  private ringOf = "";

  override select(list: Parameters<ShardSelect>[0], ctx: Parameters<ShardSelect>[1]): ReturnType<ShardSelect> {
    const ids = list
      .map((endpoint: ShardEndpoint) => endpoint.id)
      .sort()
      .join("\n");
    if (ids !== this.ringOf) {
      this.ringOf = ids;
      (this as unknown as { needRebuild: boolean }).needRebuild = true;
    }
    return super.select(list, ctx);
  }
}

/** The name command actions give as their `strategy`; registered as this module loads (the mixin imports it). */
export const AGGREGATE_SHARD = "AggregateShard";
Strategies.register(AGGREGATE_SHARD, AggregateShardStrategy as never);
