// Readiness (GET /api/ready): the event store reachable and the view caught up with it — at most `maxLag` events
// behind — and nothing this node's starts still wait for (lib/dependency-wait.ts). Every reason is given.
import { compareTokens } from "../lib/tokens.ts";
import type { ActionCall } from "../lib/actions.ts";

export interface Readiness {
  status: "READY" | "NOT_READY";
  eventStorePosition: number | null;
  viewPosition: number | null;
  lag: number;
  reasons: string[];
}

/** `waiting`: what this node's own starts still wait for (a database, MongoDB); it comes first, it explains what follows. */
export async function readiness(call: ActionCall, maxLag: number, waiting: string[] = []): Promise<Readiness> {
  const reasons = [...waiting];
  let head: { globalPosition: number; token: string } | null = null;
  try {
    // No retries: a probe asked while the node is still starting answers 503 at once, not after the retry
    // policy's back-off (which held the first 200 back by up to two seconds after the start).
    head = await call("eventstore.head", {}, { timeout: 3000, retries: 0 });
  } catch (err) {
    reasons.push(`event store unreachable: ${(err as Error).message}`);
  }
  let view: { token: string; globalPosition: number } | null = null;
  try {
    view = await call("view.position", {}, { timeout: 3000, retries: 0 });
  } catch (err) {
    reasons.push(`view unreachable: ${(err as Error).message}`);
  }
  let lag = 0;
  if (head && view && compareTokens(view.token, head.token) < 0) {
    // Counted after the view's token: positions are not in delivery order, so their difference is no lag.
    lag = (await call("eventstore.countAfter", { token: view.token, cap: maxLag + 1 })).count;
    if (lag > maxLag) reasons.push(`view is more than ${maxLag} events behind the event store`);
  }
  return { status: reasons.length === 0 ? "READY" : "NOT_READY", eventStorePosition: head?.globalPosition ?? null, viewPosition: view?.globalPosition ?? null, lag, reasons };
}
