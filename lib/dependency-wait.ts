// Start and wait (issue 12): a node whose PostgreSQL or MongoDB is not up yet keeps trying with backoff instead of
// exiting, says so in its log once per attempt and in `/api/ready` (waitingFor), and comes up when the dependency
// does. Only an outage is waited out (lib/errors.ts isDependencyOutage); any other error — a wrong password, a
// database that does not exist — is a configuration error and fails the start at once. A stop of the process
// (processStopping) ends the wait.
import { isDependencyOutage, unavailable } from "./errors.ts";
import { processStopping } from "./lifecycle.ts";
import { sleep } from "./sleep.ts";

/** The first wait between two attempts; doubled up to WAIT_MAX_MS. */
const WAIT_FIRST_MS = 250;
const WAIT_MAX_MS = 2000;

/** What this process is waiting for right now: "<what>: <last error>". */
const waits = new Map<string, string>();

/** The dependencies this process's starts are waiting for, for readiness reports. */
export function waitingFor(): string[] {
  return [...waits.entries()].map(([what, reason]) => `waiting for ${what}: ${reason}`);
}

/**
 * Runs `attempt` until it succeeds, waiting out outages of the dependency it reaches. `what` names it in the log
 * and in waitingFor ("the database (schema view)", "MongoDB (view store)").
 */
export async function untilReachable<T>(what: string, attempt: () => Promise<T>, log: (message: string) => void): Promise<T> {
  let delay = WAIT_FIRST_MS;
  const since = Date.now();
  try {
    for (let tries = 1; ; tries++) {
      try {
        const result = await attempt();
        if (tries > 1) log(`${what} reached after ${Date.now() - since} ms (${tries} attempts)`);
        return result;
      } catch (err) {
        if (!isDependencyOutage(err) || processStopping.signal.aborted) throw err;
        const reason = (err as Error).message;
        waits.set(what, reason);
        log(`Waiting for ${what}: ${reason}; retrying in ${delay} ms`);
        await sleep(delay, processStopping.signal);
        if (processStopping.signal.aborted) throw unavailable(`Stopped while waiting for ${what}`);
        delay = Math.min(delay * 2, WAIT_MAX_MS);
      }
    }
  } finally {
    waits.delete(what);
  }
}
