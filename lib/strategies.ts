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
