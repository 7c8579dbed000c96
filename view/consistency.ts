// Consistency of the view's answers: which token the view has applied (this instance's own when it writes, else
// the stored one or the newer one a writer has told), what version an answer is computed from (`knownVersion`),
// and the bounded wait of a query for a global position (`minPosition`).
import { consistencyTimeout } from "../lib/errors.ts";
import { compareTokens } from "../lib/tokens.ts";
import { loadMeta, type ViewMeta } from "./generations.ts";
import type { ViewStore } from "./stores/store.ts";

/** What every query accepts: wait until the view has applied the event at `minPosition`, at most `maxWaitMs`. */
export interface ConsistencyParams {
  minPosition?: number;
  maxWaitMs?: number;
}

export interface ConsistencyOptions {
  store: Pick<ViewStore, "getMeta">;
  /** The meta this instance wrote, while it writes the view (holds the processor's lease); else null. */
  written: () => ViewMeta | null;
  /** The token of the event at a global position; null while there is none. */
  tokenOf: (globalPosition: number) => Promise<string | null>;
  /** How long a query waits for its minPosition at most, ms (when it names no maxWaitMs). */
  timeoutMs: number;
  /** How long a stored meta read by an instance that does not write is used again, ms (default 500). */
  metaTtlMs?: number;
}

export class ViewConsistency {
  private readonly options: ConsistencyOptions;
  private metaCache: { at: number; meta: ViewMeta } | null = null;
  /** The newest token a writer has told (instances that do not write). */
  private observedToken: string | null = null;
  private waiters: (() => void)[] = [];
  private readonly positionTokens = new Map<number, string>();

  constructor(options: ConsistencyOptions) {
    this.options = options;
  }

  /** The view's meta: this instance's own while it writes, else the stored one (read again after metaTtlMs). */
  async readMeta(): Promise<ViewMeta> {
    const written = this.options.written();
    if (written) return written;
    if (this.metaCache && Date.now() - this.metaCache.at < (this.options.metaTtlMs ?? 500)) return this.metaCache.meta;
    const meta = await loadMeta(this.options.store);
    this.metaCache = { at: Date.now(), meta };
    return meta;
  }

  /** The stored meta is read again next time (a generation switched). */
  forgetMeta(): void {
    this.metaCache = null;
  }

  /** A writer told the token it has applied. */
  observe(token: string): void {
    this.observedToken = token;
  }

  /** The token the view has applied, given its meta. */
  appliedToken(meta: { token: string }): string {
    const written = this.options.written();
    if (written) return written.token;
    if (this.observedToken && compareTokens(this.observedToken, meta.token) > 0) return this.observedToken;
    return meta.token;
  }

  /**
   * What an answer of the view is computed from: its generation and the token it has applied (`knownVersion`).
   * Read before the query, so an answer is never older than the version it is given.
   */
  async answerVersion(): Promise<string> {
    const meta = await this.readMeta();
    return `${meta.generation}:${this.appliedToken(meta)}`;
  }

  /** The view has moved: the waiting queries look again. */
  notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Waits until the view has applied the event at `minPosition` (bounded by maxWaitMs); CONSISTENCY_TIMEOUT after. */
  async awaitPosition(params: ConsistencyParams): Promise<void> {
    const position = params.minPosition;
    if (!position) return;
    const deadline = Date.now() + (params.maxWaitMs ?? this.options.timeoutMs);
    let target: string | null = this.positionTokens.get(position) ?? null;
    for (;;) {
      if (!target) {
        target = await this.options.tokenOf(position);
        if (target) this.positionTokens.set(position, target);
        if (this.positionTokens.size > 10_000) this.positionTokens.clear();
      }
      if (target) {
        this.metaCache = null;
        const applied = this.appliedToken(await this.readMeta());
        if (compareTokens(applied, target) >= 0) return;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw consistencyTimeout(`The view has not reached position ${position} yet`, { minPosition: position });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
