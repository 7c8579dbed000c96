// The service-discovery dashboard: a live picture of the cluster from the gateway's snapshots.
// Snapshots arrive over Server-Sent Events (GET /api/dashboard/events, `event: snapshot`); when the stream is
// unavailable the page polls GET /api/dashboard instead and keeps trying to get the stream back.
//
// Everything a person reads is also addressable for tests: rows carry data-node / data-service /
// data-processor / data-event attributes and their status as data-status.
//
// With authentication configured the dashboard needs an operator: the page sends this tab's token (page.js) and,
// when the gateway answers 401 or 403, shows why and a sign-in form instead of the cluster.
// @ts-check

import {
  $,
  currentToken,
  forgetToken,
  h,
  signInForm,
  signOutButton,
  streamAddress,
  takeTokenFromAddress,
  withCredentials,
} from "../assets/page.js";

// ---- what GET /api/dashboard answers (gateway/dashboard.ts, clusterSnapshot) ------------------------------

/**
 * @typedef {object} ClusterNode
 * @property {string} id
 * @property {boolean} available
 * @property {boolean} local the gateway this page talks to
 * @property {string | null} hostname only for operators
 * @property {string[]} ipList only for operators
 * @property {{ type: string, version: string, langVersion?: string } | null} client only for operators
 * @property {string | null} offlineSince ISO time
 * @property {number | null} cpu utilisation in percent
 * @property {{ free: number, total: number, rss: number | null } | null} memory bytes
 * @property {number | null} uptime seconds
 */
/**
 * @typedef {object} ClusterService
 * @property {string} name
 * @property {string} fullName
 * @property {string | number | null} version
 * @property {string[]} nodes ids of the nodes it runs on
 * @property {boolean} available
 * @property {{ name: string, visibility: string }[]} actions
 * @property {string[]} events
 */
/** @typedef {{ name: string, group: string | null, subscribers: string[] }} ClusterEvent */
/** @typedef {{ globalPosition: number, token: string }} EventStoreHead */
/**
 * @typedef {object} Processor a tracking processor
 * @property {string} name
 * @property {string} status
 * @property {number} globalPosition
 * @property {number} lag events after its position
 * @property {number} [headPosition]
 * @property {string | null} owner
 * @property {string | null} leaseUntil ISO time
 * @property {string | null} lastError
 */
/**
 * @typedef {object} Snapshot
 * @property {string} at ISO time
 * @property {ClusterNode[]} nodes
 * @property {ClusterService[]} services
 * @property {ClusterEvent[]} events
 * @property {EventStoreHead | null} eventStore null: unreachable
 * @property {Processor[]} processors
 */

const SNAPSHOT_URL = "/api/dashboard";
const STREAM_URL = "/api/dashboard/events";
const POLL_MS = 2000;
const STALE_MS = 7000;
const STREAM_RETRY_MS = 15000;

const state = {
  /** @type {Snapshot | null} */
  snapshot: null,
  receivedAt: 0,
  mode: "connecting",
  /** @type {EventSource | null} */
  source: null,
  /** @type {ReturnType<typeof setInterval> | null} */
  pollTimer: null,
  /** The gateway refused this page's credentials: nothing is asked for until the person signs in. */
  refused: false,
  /** @type {ReturnType<typeof setTimeout> | null} */
  retryTimer: null,
  showInternal: false,
  /** The services whose actions are unfolded (full names). */
  openActions: /** @type {Set<string>} */ (new Set()),
  /** node id → when this page first saw it offline. */
  offlineSeenAt: /** @type {Map<string, Date>} */ (new Map()),
  /** @type {number | null} */
  lastHead: null,
  /** processor name → its position in the last snapshot. */
  lastPositions: /** @type {Map<string, number>} */ (new Map()),
};

// ---- formatting ---------------------------------------------------------------------------------------------

/** @param {number | null | undefined} seconds */
function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (d > 0) return `${d}d ${hh}h ${String(mm).padStart(2, "0")}m`;
  if (hh > 0) return `${hh}h ${String(mm).padStart(2, "0")}m ${String(ss).padStart(2, "0")}s`;
  if (mm > 0) return `${mm}m ${String(ss).padStart(2, "0")}s`;
  return `${ss}s`;
}

/** @param {number | null | undefined} n */
function bytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** @param {Date} date */
function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** @param {number} ms from now */
function relative(ms) {
  const s = Math.round(ms / 1000);
  return s >= 0 ? `in ${duration(s)}` : `${duration(-s)} ago`;
}

// ---- what a snapshot means ----------------------------------------------------------------------------------

/** @param {ClusterService} service */
const isInternal = (service) => service.name.startsWith("$");

/**
 * When a node went offline: the gateway sends it as an ISO time; else when this page first saw it offline.
 * @param {ClusterNode} node
 */
function offlineAt(node) {
  if (typeof node.offlineSince === "string" && Number.isFinite(Date.parse(node.offlineSince)))
    return new Date(node.offlineSince);
  let seen = state.offlineSeenAt.get(node.id);
  if (seen === undefined) {
    seen = new Date();
    state.offlineSeenAt.set(node.id, seen);
  }
  return seen;
}

/**
 * @param {Snapshot} snapshot
 * @returns {Map<string, ClusterService[]>} node id → the (shown) services on it, by name
 */
function servicesByNode(snapshot) {
  /** @type {Map<string, ClusterService[]>} */
  const map = new Map();
  for (const service of snapshot.services) {
    if (!state.showInternal && isInternal(service)) continue;
    for (const nodeId of service.nodes ?? []) {
      const list = map.get(nodeId);
      if (list) list.push(service);
      else map.set(nodeId, [service]);
    }
  }
  for (const list of map.values()) list.sort((a, b) => a.fullName.localeCompare(b.fullName));
  return map;
}

// ---- rendering ----------------------------------------------------------------------------------------------

/** @param {Snapshot} snapshot */
function renderSummary(snapshot) {
  const online = snapshot.nodes.filter((n) => n.available).length;
  $("#summary-nodes").textContent = `${online} of ${snapshot.nodes.length}`;
  const visible = snapshot.services.filter((s) => !isInternal(s));
  $("#summary-services").textContent = String(visible.length);
  $("#summary-head").textContent = snapshot.eventStore
    ? `position ${snapshot.eventStore.globalPosition}`
    : "unreachable";
  const behind = (snapshot.processors ?? []).filter((p) => p.lag > 0).length;
  $("#summary-processors").textContent = snapshot.processors?.length
    ? `${snapshot.processors.length}${behind ? `, ${behind} behind` : ", all caught up"}`
    : "none";
}

/** @param {Snapshot} snapshot */
function renderNodes(snapshot) {
  const byNode = servicesByNode(snapshot);
  const nodes = [...snapshot.nodes].sort((a, b) => a.id.localeCompare(b.id));
  const rows = nodes.map((node) => {
    const status = node.available ? "online" : "offline";
    if (node.available) state.offlineSeenAt.delete(node.id);
    const since = node.available ? null : offlineAt(node);
    const services = byNode.get(node.id) ?? [];
    const memory = node.memory;
    const usedPercent = memory && memory.total ? Math.round(((memory.total - memory.free) / memory.total) * 100) : null;
    return h(
      "tr",
      { dataset: { node: node.id, status }, class: status },
      h(
        "th",
        { scope: "row" },
        h("span", { class: "node-id" }, node.id),
        node.local ? h("span", { class: "badge", title: "The gateway this page talks to" }, "gateway") : null,
      ),
      h(
        "td",
        { class: "status-cell" },
        h("span", { class: `status ${status}`, dataset: { nodeStatus: status } }, status),
        since ? h("span", { class: "muted" }, ` since ${clock(since)}`) : null,
      ),
      h(
        "td",
        {},
        node.hostname ?? "–",
        node.ipList?.length ? h("div", { class: "muted small" }, node.ipList.join(", ")) : null,
      ),
      h("td", { dataset: { field: "uptime" } }, node.available ? duration(node.uptime) : "–"),
      h(
        "td",
        { dataset: { field: "cpu" } },
        node.available && node.cpu !== null && node.cpu !== undefined
          ? meter(node.cpu, `${Math.round(node.cpu)} %`)
          : "–",
      ),
      h(
        "td",
        { dataset: { field: "memory" } },
        memory
          ? [
              h("div", {}, `process ${bytes(memory.rss)}`),
              h("div", { class: "muted small" }, `host ${usedPercent} % of ${bytes(memory.total)} used`),
            ]
          : "–",
      ),
      h(
        "td",
        { class: "small" },
        node.client ? `${node.client.type} ${node.client.langVersion ?? ""}, moleculer ${node.client.version}` : "–",
      ),
      h(
        "td",
        {},
        services.length
          ? h(
              "ul",
              { class: "tags" },
              services.map((s) => h("li", { dataset: { nodeService: s.name } }, s.fullName)),
            )
          : h("span", { class: "muted" }, node.available ? "no services" : "none (offline)"),
      ),
    );
  });
  $("#nodes tbody").replaceChildren(...(rows.length ? rows : [emptyRow(8, "No nodes known")]));
}

/**
 * @param {number} percent
 * @param {string} label
 */
function meter(percent, label) {
  const value = Math.max(0, Math.min(100, percent));
  return h(
    "span",
    { class: "meter", role: "img", "aria-label": `CPU ${label}` },
    h("span", { class: "meter-bar", style: `width:${value}%` }),
    h("span", { class: "meter-label" }, label),
  );
}

/**
 * @param {number} columns
 * @param {string} text
 */
function emptyRow(columns, text) {
  return h("tr", {}, h("td", { colspan: columns, class: "muted empty" }, text));
}

/** @param {Snapshot} snapshot */
function renderEventStore(snapshot) {
  const el = $("#eventstore");
  const head = snapshot.eventStore;
  el.replaceChildren();
  if (!head) {
    el.dataset.status = "unreachable";
    el.append(h("strong", {}, "Event store: "), h("span", { class: "status offline" }, "unreachable"));
    return;
  }
  el.dataset.status = "reachable";
  el.dataset.position = String(head.globalPosition);
  const moved = state.lastHead !== null && head.globalPosition !== state.lastHead;
  el.append(
    h("strong", {}, "Event store head: "),
    h(
      "span",
      { class: `position${moved ? " flash" : ""}`, dataset: { field: "head" } },
      `position ${head.globalPosition}`,
    ),
    h("span", { class: "muted" }, ` (token ${head.token})`),
  );
  state.lastHead = head.globalPosition;
}

/** @param {Snapshot} snapshot */
function renderProcessors(snapshot) {
  const processors = [...(snapshot.processors ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  const now = Date.parse(snapshot.at) || Date.now();
  const rows = processors.map((p) => {
    const head = p.headPosition ?? snapshot.eventStore?.globalPosition ?? p.globalPosition;
    const moved = state.lastPositions.has(p.name) && state.lastPositions.get(p.name) !== p.globalPosition;
    state.lastPositions.set(p.name, p.globalPosition);
    const lease = p.leaseUntil ? Date.parse(p.leaseUntil) - now : null;
    const caughtUp = p.lag === 0;
    return h(
      "tr",
      { dataset: { processor: p.name, status: p.status, position: String(p.globalPosition), lag: String(p.lag) } },
      h("th", { scope: "row" }, p.name),
      h(
        "td",
        {},
        h(
          "span",
          {
            class: `status ${p.status === "failed" ? "offline" : caughtUp ? "online" : "busy"}`,
            dataset: { field: "status" },
          },
          p.status,
        ),
      ),
      h("td", { class: `num${moved ? " flash" : ""}`, dataset: { field: "position" } }, `position ${p.globalPosition}`),
      h("td", { class: `num${caughtUp ? "" : " warn"}`, dataset: { field: "lag" } }, `lag ${p.lag}`),
      h(
        "td",
        {},
        h("progress", {
          max: Math.max(1, head),
          value: caughtUp ? Math.max(1, head) : Math.min(p.globalPosition, head),
          "aria-label": `${p.name}: position ${p.globalPosition} of ${head}`,
        }),
      ),
      h("td", { class: "small", dataset: { field: "owner" } }, p.owner ?? h("span", { class: "muted" }, "no owner")),
      h(
        "td",
        { class: "small" },
        p.leaseUntil && lease !== null
          ? [clock(new Date(p.leaseUntil)), h("div", { class: `muted${lease < 0 ? " warn" : ""}` }, relative(lease))]
          : "–",
      ),
      h(
        "td",
        { class: "small" },
        p.lastError ? h("span", { class: "error-text" }, p.lastError) : h("span", { class: "muted" }, "none"),
      ),
    );
  });
  $("#processors tbody").replaceChildren(
    ...(rows.length
      ? rows
      : [
          emptyRow(
            8,
            snapshot.eventStore ? "No tracking processors registered" : "Unknown: the event store is unreachable",
          ),
        ]),
  );
}

/** @param {Snapshot} snapshot */
function renderServices(snapshot) {
  const nodeById = new Map(snapshot.nodes.map((n) => [n.id, n]));
  const services = snapshot.services
    .filter((s) => state.showInternal || !isInternal(s))
    .sort((a, b) => a.fullName.localeCompare(b.fullName));
  const cards = services.map((service) => {
    const key = service.fullName;
    const endpoints = service.nodes ?? [];
    const actions = [...(service.actions ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    /** @type {HTMLDetailsElement} */
    const details = h(
      "details",
      {
        open: state.openActions.has(key),
        ontoggle: () => (details.open ? state.openActions.add(key) : state.openActions.delete(key)),
      },
      h("summary", {}, `${actions.length} action${actions.length === 1 ? "" : "s"}`),
      h(
        "table",
        { class: "actions" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Action"),
            h("th", { scope: "col" }, "Visibility"),
            h("th", { scope: "col" }, "Endpoints"),
          ),
        ),
        h(
          "tbody",
          {},
          actions.map((a) =>
            h(
              "tr",
              { dataset: { action: a.name, visibility: a.visibility } },
              h("td", {}, h("code", {}, a.name)),
              h("td", {}, h("span", { class: `visibility ${a.visibility}` }, a.visibility)),
              h("td", {}, endpoints.join(", ")),
            ),
          ),
        ),
      ),
    );
    return h(
      "article",
      {
        class: "service",
        dataset: {
          service: service.name,
          version: String(service.version ?? ""),
          available: String(service.available),
        },
        "aria-label": `Service ${key}`,
      },
      h(
        "h3",
        {},
        h("span", {}, service.name),
        h(
          "span",
          { class: "badge version" },
          service.version !== null && service.version !== undefined ? `version ${service.version}` : "unversioned",
        ),
      ),
      h(
        "div",
        { class: "runs-on" },
        "Runs on ",
        h(
          "ul",
          { class: "tags inline" },
          endpoints.map((id) => {
            const online = nodeById.get(id)?.available !== false;
            return h(
              "li",
              { dataset: { serviceNode: id }, class: online ? "" : "offline" },
              id,
              online ? null : " (offline)",
            );
          }),
        ),
      ),
      service.events?.length
        ? h(
            "p",
            { class: "small" },
            "Subscribes to ",
            service.events.map((e, i) => [i ? ", " : "", h("code", {}, e)]),
          )
        : null,
      details,
    );
  });
  $("#services").replaceChildren(...(cards.length ? cards : [h("p", { class: "muted" }, "No services")]));
}

/** @param {Snapshot} snapshot */
function renderEvents(snapshot) {
  const events = snapshot.events
    .filter((e) => state.showInternal || !e.name.startsWith("$"))
    .sort((a, b) => a.name.localeCompare(b.name) || String(a.group).localeCompare(String(b.group)));
  const rows = events.map((e) =>
    h(
      "tr",
      { dataset: { event: e.name, group: e.group ?? "" } },
      h("th", { scope: "row" }, h("code", {}, e.name)),
      h("td", {}, e.group ?? "–"),
      h(
        "td",
        {},
        e.subscribers.length
          ? h(
              "ul",
              { class: "tags inline" },
              e.subscribers.map((id) => h("li", { dataset: { subscriber: id } }, id)),
            )
          : h("span", { class: "muted" }, "none"),
      ),
    ),
  );
  $("#events tbody").replaceChildren(...(rows.length ? rows : [emptyRow(3, "No event subscriptions")]));
}

/** @param {Snapshot} snapshot */
function apply(snapshot) {
  state.snapshot = snapshot;
  state.receivedAt = Date.now();
  render();
}

function render() {
  const snapshot = state.snapshot;
  if (!snapshot) return;
  renderSummary(snapshot);
  renderNodes(snapshot);
  renderEventStore(snapshot);
  renderProcessors(snapshot);
  renderServices(snapshot);
  renderEvents(snapshot);
  const updated = $("#updated", document, HTMLTimeElement);
  updated.dateTime = snapshot.at;
  updated.textContent = clock(new Date(snapshot.at));
  const main = $("#main");
  main.setAttribute("aria-busy", "false");
  main.classList.remove("stale");
  document.body.dataset.ready = "true";
}

// ---- connection: stream first, polling as the fallback ------------------------------------------------------

/**
 * @param {string} mode
 * @param {string} text
 */
function setMode(mode, text) {
  state.mode = mode;
  const el = $("#connection");
  if (el.dataset.state === mode && el.textContent === text) return;
  el.dataset.state = mode;
  el.textContent = text;
}

function openStream() {
  if (state.refused) return;
  if (typeof EventSource === "undefined") {
    startPolling();
    return;
  }
  closeStream();
  const source = new EventSource(streamAddress(STREAM_URL));
  state.source = source;
  source.addEventListener("open", () => {
    stopPolling();
    setMode("live", "Live (server-sent events)");
  });
  source.addEventListener("snapshot", (event) => {
    stopPolling();
    setMode("live", "Live (server-sent events)");
    try {
      apply(JSON.parse(event.data));
    } catch (err) {
      console.error("Bad snapshot", err);
    }
  });
  source.addEventListener("error", (event) => {
    // The gateway names a failed snapshot "error" too: that one carries data and the stream stays up.
    if (event instanceof MessageEvent && event.data) {
      let message = event.data;
      try {
        message = JSON.parse(event.data).message ?? message;
      } catch {
        // keep the raw text
      }
      setMode("degraded", `Live, but the last snapshot failed: ${message}`);
      return;
    }
    if (source.readyState === EventSource.CLOSED) {
      closeStream();
      state.retryTimer = setTimeout(openStream, STREAM_RETRY_MS);
    }
    startPolling();
  });
}

function closeStream() {
  if (state.source) state.source.close();
  state.source = null;
  if (state.retryTimer) clearTimeout(state.retryTimer);
  state.retryTimer = null;
}

function startPolling() {
  if (state.pollTimer || state.refused) return;
  const tick = async () => {
    try {
      const response = await fetch(SNAPSHOT_URL, {
        headers: withCredentials({ Accept: "application/json" }),
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) return refused(response);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      apply(await response.json());
      if (state.mode !== "live")
        setMode("polling", `Polling every ${POLL_MS / 1000} s (the event stream is unavailable)`);
    } catch (err) {
      setMode("disconnected", `Gateway unreachable (${err instanceof Error ? err.message : String(err)}); retrying`);
    }
  };
  state.pollTimer = setInterval(tick, POLL_MS);
  void tick();
}

function stopPolling() {
  if (state.pollTimer) clearInterval(state.pollTimer);
  state.pollTimer = null;
}

/** A stream that is open but silent is as bad as a closed one: fetch a snapshot and say so. */
function watchdog() {
  if (!state.snapshot || state.refused) return;
  const age = Date.now() - state.receivedAt;
  const stale = age > STALE_MS;
  $("#main").classList.toggle("stale", stale);
  if (stale && !state.pollTimer) {
    setMode("stale", `No update for ${Math.round(age / 1000)} s; checking`);
    startPolling();
  }
}

// ---- sign-in ------------------------------------------------------------------------------------------------

/**
 * The gateway refused this page (no, an expired, or a non-operator's token): stop asking, say why, offer sign-in.
 * @param {Response} response
 */
async function refused(response) {
  stopPolling();
  closeStream();
  state.refused = true;
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) forgetToken();
  const reason =
    response.status === 401
      ? `The gateway needs a signed-in operator: ${body.message ?? "no valid credentials"}.`
      : `Signed in, but not as an operator: ${body.message ?? "forbidden"}. Sign in with an operator's token.`;
  setMode("refused", response.status === 401 ? "Not signed in" : "Not an operator");
  const main = $("#main");
  main.setAttribute("aria-busy", "false");
  main.replaceChildren(signInForm(reason, () => window.location.reload()));
  $("#access-token").focus();
  document.body.dataset.ready = "true";
}

// ---- start ---------------------------------------------------------------------------------------------------

const showInternal = $("#show-internal", document, HTMLInputElement);
showInternal.addEventListener("change", () => {
  state.showInternal = showInternal.checked;
  render();
});
takeTokenFromAddress();
if (currentToken()) $("header nav").append(" · ", signOutButton());
openStream();
// Without any snapshot after a moment the stream is not working here (or refused this page): poll meanwhile.
setTimeout(() => {
  if (!state.snapshot && !state.refused) startPolling();
}, 3000);
setInterval(watchdog, 1000);
