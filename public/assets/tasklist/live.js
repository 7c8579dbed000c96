// Live updates: the event stream GET /api/events (Server-Sent Events), polling when it is unavailable, and the
// announcement of new tasks.
// @ts-check

import { $, currentToken, find, streamAddress } from "../page.js";
import { announce, showError } from "./messages.js";
import { NEW_HIGHLIGHT_MS, POLL_MS, REFRESH_DEBOUNCE_MS, STREAM_RETRY_MS, me, state } from "./state.js";
import { tasks } from "./tasks.js";
import { workpieces } from "./workpieces.js";

/** @import { Refusal } from "./api.js" */
/**
 * The data of task-added, task-changed and task-removed (a refusal of the engine comes as a task change).
 * @typedef {object} TaskEventData
 * @property {string} id
 * @property {string} change
 * @property {number} position
 * @property {string} [applicationName]
 * @property {Refusal} [refusal]
 */
/** @typedef {{ processDefinitionId: string, requestId: string, reason: string, position: number }} StartRefusedData */

/**
 * @param {"off" | "polling" | "connecting" | "live"} mode
 * @param {string} text
 */
export function setLive(mode, text) {
  const el = $("#live-status");
  el.dataset.state = mode;
  el.textContent = text;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let refreshTimer;
/** @param {"tasks" | "workpieces"} which */
function scheduleRefresh(which) {
  if (which === "workpieces") {
    if (state.tab === "workpieces") void workpieces.load();
    else workpieces.stale = true;
    return;
  }
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (state.tab === "tasks") void tasks.load();
    else tasks.stale = true;
  }, REFRESH_DEBOUNCE_MS);
}

export function closeStream() {
  state.source?.close();
  state.source = null;
  clearTimeout(state.retryTimer);
  state.retryTimer = undefined;
  clearInterval(state.pollTimer);
  state.pollTimer = undefined;
}

function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(() => {
    void tasks.load();
    if (workpieces.loaded) void workpieces.load();
  }, POLL_MS);
}

/** Opens the event stream of the signed-in user (none without one), polling while it is unavailable. */
export function openStream() {
  closeStream();
  if (!state.user) {
    setLive("off", "Live updates off");
    return;
  }
  if (typeof EventSource === "undefined") {
    setLive("polling", `Refreshing every ${POLL_MS / 1000} s`);
    startPolling();
    return;
  }
  const user = state.user;
  const source = new EventSource(
    currentToken() ? streamAddress("/api/events") : `/api/events?user=${encodeURIComponent(user)}`,
  );
  state.source = source;
  setLive("connecting", "Connecting live updates…");
  source.addEventListener("open", () => {
    clearInterval(state.pollTimer);
    state.pollTimer = undefined;
    setLive("live", "Live");
    // Whatever happened while the stream was down: read the page again.
    if (tasks.loaded) scheduleRefresh("tasks");
  });
  /** @param {"task-added" | "task-changed" | "task-removed"} kind */
  const onTask = (kind) => (/** @type {MessageEvent<string>} */ event) => {
    /** @type {TaskEventData} */
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (kind === "task-added") state.newTasks.set(data.id, Date.now() + NEW_HIGHLIGHT_MS);
    if (kind === "task-changed") state.changedTasks.add(data.id);
    if (data.refusal && (!data.refusal.username || data.refusal.username === me())) {
      showError(`The process engine refused your ${data.refusal.interaction}`, {
        message: data.refusal.reason,
        type: "INTERACTION_REFUSED",
      });
    }
    scheduleRefresh("tasks");
  };
  source.addEventListener("task-added", onTask("task-added"));
  source.addEventListener("task-changed", onTask("task-changed"));
  source.addEventListener("task-removed", onTask("task-removed"));
  source.addEventListener("data-entry-changed", () => scheduleRefresh("workpieces"));
  source.addEventListener("process-start-refused", (event) => {
    /** @type {StartRefusedData} */
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    const name = state.startRequests.get(data.requestId) ?? data.processDefinitionId;
    showError(`The process engine refused to start “${name}”`, { message: data.reason, type: "PROCESS_START_REFUSED" });
  });
  source.addEventListener("error", () => {
    if (state.source !== source) return;
    if (source.readyState === EventSource.CLOSED) {
      // Refused (e.g. the gateway does not accept this way of naming the user) or gone: poll, retry later.
      setLive("polling", `Live updates unavailable; refreshing every ${POLL_MS / 1000} s`);
      startPolling();
      state.retryTimer = setTimeout(() => {
        if (state.user === user) openStream();
      }, STREAM_RETRY_MS);
    } else {
      setLive("connecting", "Reconnecting live updates…");
    }
  });
}

// Announce new tasks once they are on screen.
/** @type {Set<string>} */
const announced = new Set();
const tbodyObserver = new MutationObserver(() => {
  for (const row of document.querySelectorAll("#tasks-table tr.new")) {
    if (!(row instanceof HTMLElement)) continue;
    const id = row.dataset.taskId ?? "";
    if (announced.has(id)) continue;
    announced.add(id);
    announce(`New task: ${find(".task-name", row)?.textContent ?? id}`);
  }
});
tbodyObserver.observe($("#tasks-table tbody"), { childList: true });
