// Node discovery that notices a dead node in about a second and a half.
//
// A node killed with SIGKILL sends no DISCONNECT, and NATS does not tell the others that its connection closed:
// only the missing heartbeats show it. Moleculer's own check cannot be made fast: it keeps heartbeat times in
// whole seconds (`Math.round(process.uptime())`), checks them only every `heartbeatTimeout` seconds (so a dead node
// stays "available" for up to twice the timeout), and jitters the heartbeat by ±500 ms whatever its interval. Until
// the node is marked offline, commands routed to it by aggregate id (Shard strategy) keep going to it and wait for
// the request timeout, so every client worker ends up stalled on the dead node.
//
// This discoverer keeps the same protocol (HEARTBEAT, INFO, DISCONNECT packets, so it mixes with plain nodes) but
// times heartbeats in milliseconds, beats with a proportional jitter, and checks several times per timeout. When a
// node is marked offline Moleculer rejects the requests pending on it with REQUEST_REJECTED, which the broker's
// retry policy sends to another node (commands carry a commandId, so a command that did run is not applied twice).
import { Discoverers } from "moleculer";

const LocalDiscoverer = Discoverers.Local;

export interface FastDiscovererOptions {
  /** Milliseconds between two heartbeats of this node. */
  heartbeatIntervalMs: number;
  /** A remote node whose last heartbeat is older than this many milliseconds is marked offline. */
  heartbeatTimeoutMs: number;
}

interface RemoteNode {
  id: string;
  local: boolean;
  available: boolean;
}

export class FastDiscoverer extends LocalDiscoverer {
  // Set by Moleculer's base discoverer (its typings do not declare it); heartbeatInterval is 0 once a transporter
  // with its own liveness checks disabled heartbeats.
  declare opts: { heartbeatInterval: number; disableHeartbeatChecks?: boolean };
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  /** When each remote node was last heard of (heartbeat or INFO), on a monotonic clock. */
  private readonly lastSeen = new Map<string, number>();
  private beatTimer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private cleanTimer: NodeJS.Timeout | null = null;

  constructor(options: FastDiscovererOptions) {
    if (!(options.heartbeatIntervalMs > 0) || !(options.heartbeatTimeoutMs > options.heartbeatIntervalMs)) {
      throw new Error(`Heartbeat timeout (${options.heartbeatTimeoutMs} ms) must be longer than the heartbeat interval (${options.heartbeatIntervalMs} ms)`);
    }
    // Moleculer's options are in seconds; it reads them for its own bookkeeping (and for the INFO it sends).
    super({ heartbeatInterval: options.heartbeatIntervalMs / 1000, heartbeatTimeout: options.heartbeatTimeoutMs / 1000 });
    this.intervalMs = options.heartbeatIntervalMs;
    this.timeoutMs = options.heartbeatTimeoutMs;
  }

  override startHeartbeatTimers(): void {
    this.stopHeartbeatTimers();
    if (!(this.opts.heartbeatInterval > 0)) return; // a transporter without heartbeats disabled them
    // ±10 % jitter keeps the nodes of a cluster from beating in step, without ever beating in a tight loop.
    const beatEvery = Math.round(this.intervalMs * (0.9 + Math.random() * 0.2));
    this.beatTimer = setInterval(() => void this.beat().catch((err: Error) => this.logger.debug(`Heartbeat not sent: ${err.message}`)), beatEvery);
    // Checking four times per timeout bounds the detection at 1.25 × the timeout.
    this.checkTimer = setInterval(() => this.checkRemoteNodes(), Math.max(50, Math.round(this.timeoutMs / 4)));
    this.cleanTimer = setInterval(() => this.checkOfflineNodes(), 60_000);
    for (const timer of [this.beatTimer, this.checkTimer, this.cleanTimer]) timer.unref();
  }

  override stopHeartbeatTimers(): void {
    for (const timer of [this.beatTimer, this.checkTimer, this.cleanTimer]) if (timer) clearInterval(timer);
    this.beatTimer = this.checkTimer = this.cleanTimer = null;
    super.stopHeartbeatTimers();
  }

  override heartbeatReceived(nodeID: string, payload: Record<string, unknown>): void {
    this.lastSeen.set(nodeID, performance.now());
    super.heartbeatReceived(nodeID, payload);
  }

  override processRemoteNodeInfo(nodeID: string, payload: Record<string, unknown>): ReturnType<InstanceType<typeof LocalDiscoverer>["processRemoteNodeInfo"]> {
    // A node that (re)announces itself is alive: without this, a node back after an outage would be marked
    // offline again by the next check, before its first heartbeat.
    this.lastSeen.set(nodeID, performance.now());
    return super.processRemoteNodeInfo(nodeID, payload);
  }

  override remoteNodeDisconnected(nodeID: string, isUnexpected: boolean): ReturnType<InstanceType<typeof LocalDiscoverer>["remoteNodeDisconnected"]> {
    this.lastSeen.delete(nodeID);
    return super.remoteNodeDisconnected(nodeID, isUnexpected);
  }

  override checkRemoteNodes(): void {
    if (this.opts.disableHeartbeatChecks) return;
    const now = performance.now();
    for (const node of this.registry.nodes.toArray() as RemoteNode[]) {
      if (node.local || !node.available) continue;
      const seen = this.lastSeen.get(node.id);
      if (seen === undefined) {
        // Known from before this discoverer heard of it: its clock starts now.
        this.lastSeen.set(node.id, now);
        continue;
      }
      if (now - seen > this.timeoutMs) {
        this.logger.warn(`No heartbeat from node '${node.id}' for ${Math.round(now - seen)} ms: marking it offline`);
        this.lastSeen.delete(node.id);
        this.registry.nodes.disconnected(node.id, true);
      }
    }
  }
}
