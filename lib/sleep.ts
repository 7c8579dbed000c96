// One way to wait: a timer that an AbortSignal ends early (a stop must not wait out a back-off or a poll interval).

/** Resolves after `ms`, or at once when `signal` is (or becomes) aborted. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
