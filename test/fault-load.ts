// A client of the cluster as the README's retry contract describes it ("Failures and retries"): every command
// carries a commandId; a call that fails with one of the retryable types is sent again, with the same commandId,
// after a short backoff. Used by the fault suite (test/integration/faults.test.ts) and bench/failover.bench.ts,
// which also run it without the policy to count what a naive client would see.
import type { ServiceBroker } from "moleculer";

/** The types after which a command may be re-sent with the same commandId (README, "Failures and retries"). */
export const RETRYABLE = new Set(["REQUEST_TIMEOUT", "REQUEST_REJECTED", "SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND", "SERVICE_UNAVAILABLE"]);

export interface Ack {
  id: string;
  globalPosition: number;
  /** When the command was acknowledged (ms since the load began). */
  at: number;
}

export interface LoadResult {
  acks: Ack[];
  /** Ids whose command failed for good (retry budget spent, or not retryable). */
  failed: { id: string; type: string }[];
  /** Every failed attempt by error type (the errors a client without the retry policy would have seen). */
  attemptErrors: Record<string, number>;
  /** Error types seen that are never acceptable (a 404 for a thing that exists, an untyped error). */
  unexpected: string[];
}

export interface LoadOptions {
  workers: number;
  /** Re-send retryable failures (the documented policy); false: one attempt per command. */
  retry: boolean;
  /** Give up on one command after this long (ms). */
  budgetMs?: number;
  timeoutMs?: number;
  prefix: string;
}

export function taskCommand(id: string): Record<string, unknown> {
  return {
    id,
    name: `Task ${id}`,
    sourceReference: { type: "process", instanceId: "i", executionId: "e", definitionId: "d", definitionKey: "k", name: "Faults", applicationName: "faults" },
    taskDefinitionKey: "k",
    candidateGroups: ["muppetshow"],
    commandId: `create:${id}`,
  };
}

/** Sends `task.create` from `workers` loops until `stop()`; resolves with what happened. */
export function runLoad(client: ServiceBroker, options: LoadOptions): { stop(): Promise<LoadResult>; result: LoadResult; started: number } {
  const started = Date.now();
  const result: LoadResult = { acks: [], failed: [], attemptErrors: {}, unexpected: [] };
  let stopping = false;
  let next = 0;
  const budget = options.budgetMs ?? 60_000;
  async function send(id: string): Promise<void> {
    const deadline = Date.now() + budget;
    let delay = 50;
    for (;;) {
      try {
        const answer = (await client.call("task.create", taskCommand(id), { timeout: options.timeoutMs ?? 5000 })) as { globalPosition: number };
        result.acks.push({ id, globalPosition: answer.globalPosition, at: Date.now() - started });
        return;
      } catch (err) {
        const type = (err as { type?: string }).type ?? (err as Error).name ?? "UNTYPED";
        result.attemptErrors[type] = (result.attemptErrors[type] ?? 0) + 1;
        if (!RETRYABLE.has(type)) result.unexpected.push(`${type}: ${(err as Error).message}`);
        if (!options.retry || !RETRYABLE.has(type) || Date.now() > deadline) {
          result.failed.push({ id, type });
          // A call can fail without ever leaving the process (no endpoint): without a pause, a worker would loop
          // on microtasks alone and starve the event loop (timers, the transporter) for as long as the fault lasts.
          await new Promise((resolve) => setTimeout(resolve, 50));
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 500);
      }
    }
  }
  const workers = Array.from({ length: options.workers }, async () => {
    while (!stopping) await send(`${options.prefix}-${next++}`);
  });
  return {
    result,
    started,
    async stop() {
      stopping = true;
      await Promise.all(workers);
      return result;
    },
  };
}

/** The longest time (ms) within [from, to] in which no command was acknowledged. */
export function longestStall(acks: Ack[], from: number, to: number): number {
  const times = acks.map((a) => a.at).filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let previous = from;
  let longest = 0;
  for (const t of [...times, to]) {
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return longest;
}
