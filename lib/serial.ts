// One queue per key: work for a key runs after every earlier work for the same key has settled (an aggregate's
// commands on a node, an embedded engine's process instance), while different keys run concurrently. A key's
// entry is removed once its last work settles, so idle keys cost nothing.

export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `work` after the earlier work for `key`; its result or failure is the caller's, never the next one's. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
