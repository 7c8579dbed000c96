// The tasks list: its rows (payload, related workpieces, candidates, a refusal of the engine), and the actions on a
// task (claim, unclaim, defer, undefer, complete), sent with ?wait=true.
// @ts-check

import { $, find, h } from "../page.js";
import { ApiError, api, problemOf } from "./api.js";
import { openDialog, parseObject } from "./dialogs.js";
import { createList } from "./lists.js";
import { hideMessage, notice, showError } from "./messages.js";
import { dateCell, jsonValue } from "./render.js";
import { handOver, me, state } from "./state.js";

/** @import { DataEntry, Refusal, Task, TaskWithDataEntries } from "./api.js" */
/** @typedef {"claim" | "unclaim" | "defer" | "undefer" | "complete"} Interaction */

export const tasks = createList({
  panel: "panel-tasks",
  label: "tasks",
  url: "/api/tasks",
  defaultSort: "-task.createTime",
  countEl: "#tasks-count",
  emptyText: "No tasks for you right now.",
  columns: [
    { label: "Process", sort: "task.processName" },
    { label: "Name", sort: "task.name" },
    { label: "Details" },
    { label: "Created", sort: "task.createTime" },
    { label: "Due", sort: "task.dueDate" },
    { label: "Follow-up", sort: "task.followUpDate" },
    { label: "Priority", sort: "task.priority", class: "num" },
    { label: "Assignee", sort: "task.assignee" },
    { label: "Candidates" },
    { label: "Actions", class: "actions-col" },
  ],
  renderRow: taskRow,
});

/** @param {TaskWithDataEntries} item */
function taskRow({ task, dataEntries }) {
  const highlightUntil = state.newTasks.get(task.id);
  const isNew = highlightUntil !== undefined && highlightUntil > Date.now();
  const changed = state.changedTasks.has(task.id);
  const mine = Boolean(task.assignee) && task.assignee === me();
  const row = h(
    "tr",
    {
      dataset: { taskId: task.id },
      class: [isNew ? "new" : "", changed ? "changed" : "", mine ? "mine" : ""].filter(Boolean).join(" ") || null,
    },
    h(
      "td",
      {},
      task.processName ?? h("span", { class: "muted" }, "–"),
      task.applicationName ? h("div", { class: "muted small" }, task.applicationName) : null,
    ),
    h(
      "td",
      { class: "name" },
      h("span", { class: "task-name" }, task.name ?? task.taskDefinitionKey ?? task.id),
      isNew ? h("span", { class: "badge new-badge" }, "New") : null,
      task.businessKey ? h("div", { class: "muted small" }, `Business key ${task.businessKey}`) : null,
      task.url
        ? h(
            "div",
            { class: "small" },
            h("a", { href: handOver(task.url), target: "_blank", rel: "noopener" }, "Open form"),
          )
        : null,
      task.lastRefusal ? refusalNote(task.lastRefusal) : null,
    ),
    h("td", { class: "details" }, taskDetails(task, dataEntries)),
    h("td", {}, dateCell(task.createTime)),
    h("td", {}, dateCell(task.dueDate, { overdue: true })),
    h("td", {}, dateCell(task.followUpDate)),
    h("td", { class: "num" }, task.priority ?? h("span", { class: "muted" }, "–")),
    h(
      "td",
      { dataset: { field: "assignee" } },
      task.assignee
        ? mine
          ? h("strong", {}, `${task.assignee} (you)`)
          : task.assignee
        : h("span", { class: "muted" }, "unassigned"),
    ),
    h("td", { class: "small" }, candidates(task)),
    h("td", { class: "actions" }, taskActions(task, mine)),
  );
  if (isNew) {
    setTimeout(() => {
      row.classList.remove("new");
      find(".new-badge", row)?.remove();
    }, highlightUntil - Date.now());
  }
  if (changed) {
    state.changedTasks.delete(task.id);
    setTimeout(() => row.classList.remove("changed"), 2000);
  }
  return row;
}

/** @param {Refusal} refusal */
function refusalNote(refusal) {
  const when = refusal.time
    ? new Date(refusal.time).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })
    : null;
  return h(
    "p",
    { class: "refusal", dataset: { refusal: refusal.interaction } },
    h("span", { "aria-hidden": "true" }, "⚠ "),
    h("strong", {}, `The process engine refused “${refusal.interaction}”`),
    refusal.username || when
      ? ` (${[refusal.username ? `asked by ${refusal.username}` : null, when].filter(Boolean).join(", ")})`
      : "",
    `: ${refusal.reason}`,
  );
}

/**
 * @param {Task} task
 * @param {DataEntry[] | undefined} dataEntries
 */
function taskDetails(task, dataEntries) {
  const payload = task.payload && typeof task.payload === "object" ? Object.entries(task.payload) : [];
  return [
    task.description ? h("p", { class: "description" }, task.description) : null,
    payload.length
      ? h(
          "details",
          {},
          h("summary", {}, `Payload (${payload.length} ${payload.length === 1 ? "field" : "fields"})`),
          h(
            "dl",
            { class: "payload" },
            payload.map(([key, value]) => [h("dt", {}, key), h("dd", {}, h("code", {}, jsonValue(value)))]),
          ),
        )
      : null,
    dataEntries?.length
      ? h(
          "ul",
          { class: "entries small", "aria-label": "Related workpieces" },
          dataEntries.map((entry) =>
            h(
              "li",
              {},
              h("span", {}, entry.name ?? entry.entryId),
              ` — ${entry.type ?? entry.entryType}`,
              entry.currentState ? `, ${entry.currentState}` : "",
            ),
          ),
        )
      : null,
    !task.description && !payload.length && !dataEntries?.length ? h("span", { class: "muted" }, "–") : null,
  ];
}

/** @param {Task} task */
function candidates(task) {
  const groups = task.candidateGroups ?? [];
  const users = task.candidateUsers ?? [];
  if (groups.length === 0 && users.length === 0) return h("span", { class: "muted" }, "–");
  return h(
    "ul",
    { class: "tags" },
    groups.map((g) =>
      h(
        "li",
        { class: "group", title: "Candidate group", dataset: { candidateGroup: g } },
        g,
        h("span", { class: "kind" }, " group"),
      ),
    ),
    users.map((u) => h("li", { class: "person", title: "Candidate user", dataset: { candidateUser: u } }, u)),
  );
}

/**
 * @param {Task} task
 * @param {boolean} mine
 */
function taskActions(task, mine) {
  const label = task.name ?? task.id;
  /**
   * @param {Interaction} action
   * @param {string} text
   * @param {() => void} onclick
   */
  const button = (action, text, onclick) =>
    h("button", { type: "button", dataset: { action }, "aria-label": `${text} “${label}”`, onclick }, text);
  return h(
    "div",
    { class: "buttons" },
    mine
      ? button("unclaim", "Unclaim", () => interact(task, "unclaim"))
      : button("claim", "Claim", () => interact(task, "claim")),
    button("defer", "Defer", () => openDefer(task)),
    task.followUpDate ? button("undefer", "Undefer", () => interact(task, "undefer")) : null,
    button("complete", "Complete", () => openComplete(task)),
  );
}

/** @type {Record<Interaction, [noun: string, done: string]>} */
const VERBS = {
  claim: ["claim", "Claimed"],
  unclaim: ["unclaim", "Unclaimed"],
  defer: ["deferral", "Deferred"],
  undefer: ["undeferral", "Undeferred"],
  complete: ["completion", "Completed"],
};

/**
 * POST /api/task/:id/<action>?wait=true and say plainly what happened.
 * @param {Task} task
 * @param {Interaction} action
 * @param {unknown} [body] the follow-up date of a deferral, the variables of a completion
 */
async function interact(task, action, body) {
  const row = document.querySelector(`tr[data-task-id="${CSS.escape(task.id)}"]`);
  const buttons = row
    ? [...row.querySelectorAll("button[data-action]")].filter((b) => b instanceof HTMLButtonElement)
    : [];
  for (const b of buttons) b.disabled = true;
  row?.setAttribute("aria-busy", "true");
  const [noun, done] = VERBS[action];
  const name = task.name ?? task.id;
  hideMessage("error");
  try {
    const response = await api(`/api/task/${encodeURIComponent(task.id)}/${action}?wait=true`, {
      method: "POST",
      body,
    });
    if (response.status === 202) {
      notice(
        `Your ${noun} of “${name}” is accepted; the process engine has not confirmed it yet. The list updates when it does.`,
        { status: "202", action },
      );
    } else {
      notice(`${done} “${name}”.`, { status: String(response.status), action });
    }
  } catch (err) {
    const context = `${noun[0].toUpperCase()}${noun.slice(1)} of “${name}” failed`;
    if (err instanceof ApiError && err.status === 404)
      err.message = `${err.message}. It may have been completed or is no longer yours to see.`;
    showError(context, problemOf(err));
  } finally {
    for (const b of buttons) b.disabled = false;
    row?.removeAttribute("aria-busy");
    void tasks.load();
  }
}

/** @param {Task} task */
function openDefer(task) {
  openDialog(
    "defer-dialog",
    `“${task.name ?? task.id}”: hide it until the follow-up date.`,
    (dialog) => {
      const input = $("#defer-date", dialog, HTMLInputElement);
      const start = task.followUpDate ? new Date(task.followUpDate) : new Date(Date.now() + 24 * 3600 * 1000);
      if (!task.followUpDate) start.setHours(9, 0, 0, 0);
      const local = new Date(start.getTime() - start.getTimezoneOffset() * 60000);
      input.value = local.toISOString().slice(0, 16);
      input.focus();
    },
    (dialog) => {
      const value = $("#defer-date", dialog, HTMLInputElement).value;
      const date = new Date(value);
      if (!value || Number.isNaN(date.getTime())) return "Enter a date and time.";
      void interact(task, "defer", date.toISOString());
      return null;
    },
  );
}

/** @param {Task} task */
function openComplete(task) {
  openDialog(
    "complete-dialog",
    `“${task.name ?? task.id}”: complete it with these variables.`,
    (dialog) => {
      const area = $("#complete-payload", dialog, HTMLTextAreaElement);
      area.value = "{\n  \n}";
      area.focus();
      area.setSelectionRange(4, 4);
    },
    (dialog) => {
      const { value, error } = parseObject($("#complete-payload", dialog, HTMLTextAreaElement).value, "The payload");
      if (error) return error;
      void interact(task, "complete", value);
      return null;
    },
  );
}
