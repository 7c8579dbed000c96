// The service-discovery dashboard (GET /api/dashboard, /api/dashboard/events, public/dashboard/): a snapshot of the
// cluster — nodes, services, events, the event store's head and its processors — and a stream of snapshots, pushed
// every interval and whenever a node comes, goes or changes. Host names and addresses only for operators.
import type { ActionCall } from "../lib/actions.ts";
import { SSE_HEADERS, type SseRequest, type SseResponse } from "./event-streams.ts";

/** What `$node.list` answers of a node (the fields used here). */
export interface NodeInfo {
  id: string;
  available: boolean;
  local: boolean;
  hostname?: string;
  ipList?: string[];
  client?: unknown;
  /** The local uptime (s) at which the node went offline. */
  offlineSince?: number | null;
  cpu?: number | null;
}

/** What `$node.health` answers (the fields used here). */
export interface NodeHealth {
  cpu?: { utilization?: number };
  mem: { free: number; total: number };
  process?: { memory?: { rss?: number }; uptime?: number };
}

export interface ServiceInfo {
  name: string;
  fullName: string;
  version?: string | number | null;
  nodes?: string[];
  available: boolean;
  actions?: Record<string, { name: string; visibility?: string }>;
  events?: Record<string, unknown>;
}

export interface EventInfo {
  name: string;
  group: string;
  endpoints?: { nodeID: string }[];
}

/** The cluster as the dashboard shows it (public/dashboard/dashboard.js reads it); host details only when asked. */
export async function clusterSnapshot(call: ActionCall, hostDetails: boolean, uptime: () => number = process.uptime) {
  const [nodes, services, events] = await Promise.all([
    call("$node.list", {}),
    call("$node.services", { skipInternal: false, withActions: true, withEvents: true }),
    call("$node.events", { withEndpoints: true }),
  ]);
  const health = await Promise.all(
    nodes.map(async (node): Promise<NodeHealth | null> => {
      if (!node.available) return null;
      try {
        return await call("$node.health", {}, { nodeID: node.id, timeout: 2000 });
      } catch {
        return null;
      }
    }),
  );
  let eventStore: unknown = null;
  let processors: unknown[] = [];
  try {
    const [head, rows] = await Promise.all([call("eventstore.head", {}, { timeout: 2000 }), call("eventstore.processors", {}, { timeout: 3000 })]);
    eventStore = head;
    processors = rows;
  } catch {
    // No event store reachable: the dashboard shows that, the rest still answers.
  }
  return {
    at: new Date().toISOString(),
    nodes: nodes.map((node, i) => {
      const h = health[i];
      return {
        id: node.id,
        available: node.available,
        local: node.local,
        hostname: hostDetails ? node.hostname : null,
        ipList: hostDetails ? node.ipList : [],
        client: hostDetails ? node.client : null,
        // Moleculer records the local uptime (s) at which the node went offline; the page wants a time.
        offlineSince: node.offlineSince == null ? null : new Date(Date.now() - (uptime() - node.offlineSince) * 1000).toISOString(),
        cpu: h?.cpu?.utilization ?? node.cpu ?? null,
        memory: h ? { free: h.mem.free, total: h.mem.total, rss: h.process?.memory?.rss ?? null } : null,
        uptime: h?.process?.uptime ?? null,
      };
    }),
    services: services.map((s) => ({
      name: s.name,
      fullName: s.fullName,
      version: s.version ?? null,
      nodes: s.nodes ?? [],
      available: s.available,
      actions: Object.values(s.actions ?? {}).map((a) => ({ name: a.name, visibility: a.visibility ?? "published" })),
      events: Object.keys(s.events ?? {}),
    })),
    events: events.map((e) => ({ name: e.name, group: e.group, subscribers: (e.endpoints ?? []).map((ep) => ep.nodeID) })),
    eventStore,
    processors,
  };
}

export interface DashboardStreamOptions {
  /** A snapshot, with or without host details. */
  snapshot: (hostDetails: boolean) => Promise<unknown>;
  /** Between pushes, ms. */
  intervalMs: number;
  /** The cap on open streams; returns the release, or null when over the cap. */
  limit: (key: string) => (() => void) | null;
}

/** The dashboard's streams of snapshots. */
export class DashboardStreams {
  private readonly listeners = new Set<() => void>();
  private readonly responses = new Set<SseResponse>();
  private readonly options: DashboardStreamOptions;

  constructor(options: DashboardStreamOptions) {
    this.options = options;
  }

  /**
   * Streams snapshots to a caller (`limitKey` counts its streams); ends when the credential does (`expiresAt`,
   * ms since the epoch; null: never). False: over the cap, nothing written (the caller answers 429).
   */
  open(req: SseRequest, res: SseResponse, viewer: { limitKey: string; hostDetails: boolean; expiresAt: number | null }): boolean {
    const release = this.options.limit(viewer.limitKey);
    if (!release) return false;
    res.writeHead(200, SSE_HEADERS);
    res.write("retry: 3000\n\n");
    let busy = false;
    const push = async () => {
      if (busy) return;
      busy = true;
      try {
        const snapshot = await this.options.snapshot(viewer.hostDetails);
        res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
      } catch (err) {
        res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
      } finally {
        busy = false;
      }
    };
    void push();
    const timer = setInterval(() => void push(), this.options.intervalMs);
    const onChange = () => void push();
    this.listeners.add(onChange);
    this.responses.add(res);
    const { expiresAt } = viewer;
    const expiry = expiresAt === null ? null : setTimeout(() => res.end(), Math.max(0, Math.min(expiresAt - Date.now(), 2_147_483_647)));
    req.on("close", () => {
      clearInterval(timer);
      if (expiry) clearTimeout(expiry);
      release();
      this.listeners.delete(onChange);
      this.responses.delete(res);
    });
    return true;
  }

  /** The cluster changed (a node came, went or sent its info): push at once. */
  changed(): void {
    for (const listener of this.listeners) listener();
  }

  /** Ends every open stream (a stopping gateway). */
  endAll(): void {
    for (const res of [...this.responses]) res.end();
    this.responses.clear();
  }
}
