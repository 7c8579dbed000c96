// The live event streams of the task list (Server-Sent Events, GET /api/events): every change of the view a user may
// see — task-added, task-changed, task-removed, data-entry-changed — delivered by the principals that could see the
// document before and after the change, and kept for a retention window so that a client reconnecting with
// Last-Event-ID loses nothing. A refused process start goes to the requester's streams only. Plain code: the
// gateway (services/api.service.ts) hands it the view's batches and the requests' responses.
import { compareTokens } from "../lib/tokens.ts";
import type { User } from "../domain/types.ts";
import type { ViewChange } from "../view/projection.ts";

/** What a stream writes to: an HTTP response (fakes in tests). */
export interface SseResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string): unknown;
  end(): unknown;
  on(event: "close", listener: () => void): unknown;
}

/** The request a stream answers: only its end matters here. */
export interface SseRequest {
  on(event: "close", listener: () => void): unknown;
}

export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  Connection: "keep-alive",
  "X-Accel-Buffering": "no",
};

/** The longest delay setTimeout takes. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/** A change as kept for resumption: its id ("<view token>/<index in the batch>") orders it. */
export interface HistoryItem {
  id: string;
  at: number;
  position: number;
  change: ViewChange;
}

/** A batch of the view's changes (the `view.changed` event). */
export interface ChangeBatch {
  token: string;
  globalPosition: number;
  changes: ViewChange[];
}

/** A process start an engine refused (the `processDefinition.startRefused` event). */
export interface StartRefusal {
  processDefinitionId: string;
  requestId: string;
  requestedBy: string;
  reason: string;
  globalPosition: number;
}

/** Who a stream is for: the user and the principals (user:…, group:…) that decide what it sees. */
export interface Viewer {
  username: string;
  principals: ReadonlySet<string>;
}

export function viewerOf(user: Pick<User, "username" | "groups">): Viewer {
  return { username: user.username, principals: new Set([`user:${user.username}`, ...user.groups.map((g) => `group:${g}`)]) };
}

export interface EventStreamOptions {
  /** How long a change is kept for resumption (ms). */
  retentionMs: number;
  /** How many changes are kept at most. */
  retentionEvents: number;
  /** The cap on open streams; returns the release, or null when over the cap (gateway/gateway-security.ts). */
  limit: (key: string) => (() => void) | null;
  keepAliveMs?: number;
  now?: () => number;
}

interface OpenStream extends Viewer {
  res: SseResponse;
}

/** The event a viewer gets for a change, if any. */
export function eventFor(viewer: Viewer, change: ViewChange): string | null {
  const was = change.before.some((p) => viewer.principals.has(p));
  const is = change.after.some((p) => viewer.principals.has(p));
  if (change.collection === "tasks") {
    if (!was && is) return "task-added";
    if (was && is) return "task-changed";
    if (was && !is) return "task-removed";
    // An engine refused what this user asked for: tell the user even if the task is no longer theirs.
    if (change.refusal?.username === viewer.username) return "task-changed";
    return null;
  }
  return was || is ? "data-entry-changed" : null;
}

/** Event ids are "<token>/<index>": order by token, then by index; an id that is not one sorts after everything. */
export function compareEventIds(a: string, b: string): number {
  const [ta, ia] = a.split("/");
  const [tb, ib] = b.split("/");
  try {
    const byToken = compareTokens(ta!, tb!);
    return byToken !== 0 ? byToken : Number(ia) - Number(ib);
  } catch {
    return 1;
  }
}

export class EventStreams {
  /** The changes kept for resumption, oldest first. */
  readonly history: HistoryItem[] = [];
  private readonly streams = new Set<OpenStream>();
  private readonly responses = new Set<SseResponse>();
  private readonly options: EventStreamOptions;

  constructor(options: EventStreamOptions) {
    this.options = options;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * Answers a request with the user's stream: first what it missed after `lastEventId` (within the retention
   * window), then every change as it comes. A stream lives no longer than the credential that opened it
   * (`expiresAt`, ms since the epoch; null: no end): the client reconnects with a fresh one. False: over the cap,
   * nothing written (the caller answers 429).
   */
  open(req: SseRequest, res: SseResponse, user: Pick<User, "username" | "groups">, resume: { lastEventId?: string; expiresAt?: number | null } = {}): boolean {
    const release = this.options.limit(`user:${user.username}`);
    if (!release) return false;
    const stream: OpenStream = { res, ...viewerOf(user) };
    res.writeHead(200, SSE_HEADERS);
    res.write(`retry: 3000\n: connected as ${user.username}\n\n`);
    const { lastEventId } = resume;
    if (lastEventId) {
      for (const item of this.history) if (compareEventIds(item.id, lastEventId) > 0) deliver(stream, item);
    }
    this.streams.add(stream);
    this.responses.add(res);
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), this.options.keepAliveMs ?? 15_000);
    const expiresAt = resume.expiresAt ?? null;
    const expiry =
      expiresAt === null
        ? null
        : setTimeout(
            () => {
              res.write("event: token-expired\ndata: {}\n\n");
              res.end();
            },
            Math.max(0, Math.min(expiresAt - this.now(), MAX_TIMEOUT_MS)),
          );
    const close = () => {
      clearInterval(keepAlive);
      if (expiry) clearTimeout(expiry);
      release();
      this.streams.delete(stream);
      this.responses.delete(res);
    };
    req.on("close", close);
    res.on("close", close);
    return true;
  }

  /** The view's changes of tasks and data entries: kept for resumption and delivered to whoever may see them. */
  publishChanges(batch: ChangeBatch): void {
    const now = this.now();
    batch.changes.forEach((change, index) => {
      if (change.collection !== "tasks" && change.collection !== "dataEntries") return;
      const item: HistoryItem = { id: `${batch.token}/${index}`, at: now, position: batch.globalPosition, change };
      this.history.push(item);
      for (const stream of this.streams) deliver(stream, item);
    });
    // Retention window: a client that reconnects within it loses nothing.
    const horizon = now - this.options.retentionMs;
    while (this.history.length > 0 && (this.history[0]!.at < horizon || this.history.length > this.options.retentionEvents)) this.history.shift();
  }

  /**
   * A refused start goes to the requester's open streams only. It has no event id: ids order the view's changes
   * for Last-Event-ID, which this is not one of; a client that missed it asks GET …/process-starts/….
   */
  publishStartRefusal(refusal: StartRefusal): void {
    const data = JSON.stringify({ processDefinitionId: refusal.processDefinitionId, requestId: refusal.requestId, reason: refusal.reason, position: refusal.globalPosition });
    for (const stream of this.streams) {
      if (stream.username === refusal.requestedBy) stream.res.write(`event: process-start-refused\ndata: ${data}\n\n`);
    }
  }

  /** Ends every open stream (a stopping gateway): browsers reconnect to another one. */
  endAll(): void {
    for (const res of [...this.responses]) res.end();
    this.responses.clear();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

function deliver(stream: OpenStream, item: HistoryItem): void {
  const { change } = item;
  const event = eventFor(stream, change);
  if (!event) return;
  const data = {
    id: change.id,
    change: change.change,
    position: item.position,
    ...(change.applicationName ? { applicationName: change.applicationName } : {}),
    ...(change.refusal ? { refusal: change.refusal } : {}),
  };
  stream.res.write(`id: ${item.id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
