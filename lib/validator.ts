// The broker's parameter validator: Moleculer's fastest-validator, compiling each action's and event's `params`
// schema when it is first used instead of when the service is created. Moleculer compiles every schema of every
// service at start — in a profile of an embedded platform's restart, about 8% of its CPU time — while a node serves
// only some of them soon after it starts. The checker itself is the same, so is every answer.
//
// The price: a schema fastest-validator rejects fails its action's first call instead of the node's start.
import { Validators } from "moleculer";

type Checker = ReturnType<InstanceType<typeof Validators.Fastest>["compile"]>;

export class LazyValidator extends Validators.Fastest {
  override compile(schema: Record<string, unknown>): Checker {
    let compiled: Checker | null = null;
    const checker = () => (compiled ??= super.compile(schema));
    const check = ((params, opts) => checker()(params, opts)) as Checker;
    // Moleculer reads `async` on every call, after the first compile at the latest.
    Object.defineProperty(check, "async", { get: () => checker().async === true });
    return check;
  }
}
