// The gateway's kept answers (API_ANSWER_CACHE_MB): the serialised answer of a list route, per caller and question,
// with the version it was computed from (`view.*` `knownVersion`): for a user's task list and data entries, the
// last position at which a task or data entry one of the user's principals could see changed; for other lists the
// view's generation and applied token. A list polled again before its version moved is answered from memory — the
// view only confirms the version, without running the query — so a user's answers stay kept while others' tasks
// change, and any change the user could see makes them stale: no answer is ever older than what the view would
// say. Bounded in bytes; the least recently used answers go first.

export interface KeptAnswer {
  /** The view version the answer was computed from. */
  version: string;
  /** The answer's body, serialised: the bytes sent. */
  body: Buffer;
  /** Its total (X-ElementCount), and whether that is the cap of the count (X-ElementCount-Capped). */
  total: number;
  capped: boolean;
}

export class AnswerCache {
  private readonly answers = new Map<string, KeptAnswer>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Off when its bound is 0. */
  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  get size(): number {
    return this.answers.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  get(key: string): KeptAnswer | undefined {
    const kept = this.answers.get(key);
    if (kept) {
      // Most recently used last: Map iterates in insertion order.
      this.answers.delete(key);
      this.answers.set(key, kept);
    }
    return kept;
  }

  set(key: string, answer: KeptAnswer): void {
    this.delete(key);
    const size = sizeOf(key, answer);
    if (!this.enabled || size > this.maxBytes) return;
    this.answers.set(key, answer);
    this.bytes += size;
    for (const [oldest, kept] of this.answers) {
      if (this.bytes <= this.maxBytes) break;
      this.answers.delete(oldest);
      this.bytes -= sizeOf(oldest, kept);
    }
  }

  /** Forgets every kept answer (what renders them changed: the form URL templates). */
  clear(): void {
    this.answers.clear();
    this.bytes = 0;
  }

  delete(key: string): void {
    const kept = this.answers.get(key);
    if (!kept) return;
    this.answers.delete(key);
    this.bytes -= sizeOf(key, kept);
  }
}

/** What an answer holds in memory, roughly: its body's bytes, its strings at two bytes a character. */
function sizeOf(key: string, answer: KeptAnswer): number {
  return answer.body.length + 2 * (key.length + answer.version.length) + 64;
}
