// The Taskpool web task list: one user's tasks and workpieces (business data entries), the processes they may
// start, and live updates. Plain browser JavaScript on the REST API under /api (docs: /swagger-ui/).
//
// - Development login: the user is chosen from GET /api/users and remembered in localStorage; every request names
//   them in the X-Current-User-ID header. The event stream cannot send headers, so it names the user as ?user=<id>.
// - Token login (a gateway that verifies JWTs): the token comes in the address's fragment (/#access_token=…) or is
//   pasted into the sign-in form shown when the gateway refuses the page; it names the user (page.js).
// - Interactions are sent with ?wait=true: 204 means the list already shows the effect, 202 that the owning
//   process engine has not confirmed it yet (the live stream brings the change when it does).
// - Live: GET /api/events (Server-Sent Events); every task or data entry event re-reads the page on screen,
//   debounced. Without the stream the page re-reads every 15 s. A start the engine refused arrives as
//   process-start-refused and is shown.
// - Form and start links hand the user over: the server leaves Polyflow's %userId% placeholder in them, and this
//   page fills in the current user's id, as Polyflow's task list does.
// - A process that starts through its start form opens the form from the start menu; one that starts directly
//   opens the start dialog; one without a form address says why it cannot be started here.
// - /?start=<application>/<processKey>&userId=<id> (the link a directly started process has, for task lists that
//   can only follow links, like Polyflow's) signs in as that user and opens that process's start dialog;
//   /?task=<id>&userId=<id> (the link of a task without a form of its own) shows that task.

import { $, currentToken, forgetToken, h, signInForm, signOutButton, streamAddress, takeTokenFromAddress, withCredentials } from "/assets/page.js";

const USER_KEY = "taskpool.user";
const POLL_MS = 15_000;
const STREAM_RETRY_MS = 30_000;
const NEW_HIGHLIGHT_MS = 15_000;
const REFRESH_DEBOUNCE_MS = 250;

const state = {
  user: null,
  profile: null,
  users: [],
  processes: [],
  tab: "tasks",
  source: null,
  pollTimer: null,
  retryTimer: null,
  /** id → time until which the row is highlighted as new. */
  newTasks: new Map(),
  /** requestId → process name of the starts asked for on this page, to name them if the engine refuses. */
  startRequests: new Map(),
  /** "<application>/<processKey>" a link asked to start, once the user is signed in. */
  pendingStart: null,
  changedTasks: new Set(),
};

// ---- DOM helpers ----------------------------------------------------------------------------------------------


function dateCell(value, { overdue = false } = {}) {
  if (!value) return h("span", { class: "muted" }, "–");
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const late = overdue && date.getTime() < Date.now();
  return h(
    "time",
    { datetime: value, title: date.toISOString(), class: late ? "overdue" : null },
    date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }),
    late ? h("span", { class: "overdue-label" }, " overdue") : null,
  );
}

/** A form URL with the user handed over: every %userId% becomes the current user's id. */
function handOver(url) {
  return url ? url.replaceAll("%userId%", encodeURIComponent(state.user ?? "")) : url;
}

function jsonValue(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// ---- messages ---------------------------------------------------------------------------------------------------

function showMessage(id, content, dataset = {}) {
  const box = $(`#${id}`);
  $(".message-text", box).replaceChildren(...[content].flat());
  for (const key of Object.keys(box.dataset)) delete box.dataset[key];
  Object.assign(box.dataset, dataset);
  box.hidden = false;
}

function hideMessage(id) {
  const box = $(`#${id}`);
  box.hidden = true;
  $(".message-text", box).replaceChildren();
}

function notice(text, dataset = {}) {
  showMessage("notice", text, dataset);
}

/** An API error as a person reads it: what failed, why, and the details the server gave. */
function describeError(err) {
  const parts = [h("strong", {}, err.message || "Something went wrong")];
  if (err.type) parts.push(h("span", { class: "error-type" }, ` (${err.type}${err.status ? `, HTTP ${err.status}` : ""})`));
  if (Array.isArray(err.data) && err.data.length > 0) {
    const details = err.data
      .map((item) => (item && typeof item === "object" ? (item.message ?? JSON.stringify(item)) : String(item)))
      .filter((text) => text && text !== err.message);
    if (details.length > 0) parts.push(h("ul", {}, details.map((text) => h("li", {}, text))));
  }
  return parts;
}

function showError(context, err) {
  showMessage("error", [h("span", {}, `${context}: `), ...describeError(err)], { type: err.type ?? "", status: String(err.status ?? "") });
}

function announce(text) {
  const el = $("#announcer");
  el.textContent = "";
  setTimeout(() => (el.textContent = text), 50);
}

// ---- API --------------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.type = body?.type ?? null;
    this.data = body?.data;
  }
}

async function api(path, { method = "GET", body, user = state.user } = {}) {
  // Signed in with a token, the token says who asks; otherwise the development header names the chosen user.
  const headers = withCredentials({ Accept: "application/json" });
  if (user && !currentToken()) headers["X-Current-User-ID"] = user;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiError(0, { type: "NETWORK_ERROR", message: "The Taskpool gateway cannot be reached" });
  }
  if (!response.ok) {
    const payload = await response.json().catch(() => ({ type: `HTTP_${response.status}`, message: response.statusText || `HTTP ${response.status}` }));
    if (response.status === 401 && currentToken()) signIn(`Your sign-in ended: ${payload.message ?? "the token is no longer valid"}.`);
    throw new ApiError(response.status, payload);
  }
  return response;
}

async function json(response) {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// ---- paged, sortable, filterable lists ---------------------------------------------------------------------------

/**
 * One list view (tasks or workpieces): filter chips, sortable column heads, paging with the total, and loading
 * that never shows a stale user's answer.
 */
function createList(config) {
  const panel = $(`#${config.panel}`);
  const list = {
    ...config,
    panel,
    page: 0,
    size: Number($(".size", panel).value),
    sort: config.defaultSort,
    filters: [],
    items: [],
    total: 0,
    loaded: false,
    loading: false,
    again: false,
    generation: 0,
  };

  const form = $(".filter-form", panel);
  const input = $("input[name=filter]", form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    if (!list.filters.includes(value)) list.filters.push(value);
    input.value = "";
    list.page = 0;
    renderChips(list);
    void list.load();
  });
  $(".clear-filters", form).addEventListener("click", () => {
    list.filters = [];
    list.page = 0;
    renderChips(list);
    void list.load();
    input.focus();
  });
  $(".prev", panel).addEventListener("click", () => {
    if (list.page > 0) {
      list.page--;
      void list.load();
    }
  });
  $(".next", panel).addEventListener("click", () => {
    if ((list.page + 1) * list.size < list.total) {
      list.page++;
      void list.load();
    }
  });
  $(".size", panel).addEventListener("change", (event) => {
    list.size = Number(event.target.value);
    list.page = 0;
    void list.load();
  });

  list.reset = () => {
    list.generation++;
    list.page = 0;
    list.items = [];
    list.total = 0;
    list.loaded = false;
    $("tbody", panel).replaceChildren();
    $(".range", panel).textContent = "";
    $(".query-error", panel).hidden = true;
  };

  list.load = async () => {
    if (!state.user) return;
    if (list.loading) {
      list.again = true;
      return;
    }
    list.loading = true;
    const generation = list.generation;
    panel.setAttribute("aria-busy", "true");
    try {
      const params = new URLSearchParams({ page: String(list.page), size: String(list.size) });
      params.append("sort", list.sort);
      for (const filter of list.filters) params.append("filters", filter);
      const response = await api(`${list.url}?${params}`);
      const items = await json(response);
      if (generation !== list.generation) return;
      list.total = Number(response.headers.get("X-ElementCount") ?? items.length);
      // A page beyond the end (the last task of the page went away): show the last page instead.
      if (items.length === 0 && list.page > 0 && list.total > 0) {
        list.page = Math.max(0, Math.ceil(list.total / list.size) - 1);
        list.again = true;
        return;
      }
      list.items = items;
      list.loaded = true;
      list.queryError = null;
      $(".query-error", panel).hidden = true;
      renderChips(list);
      renderList(list);
    } catch (err) {
      if (generation !== list.generation) return;
      if (err.status === 400) {
        // A filter or sort the server refused: say which, keep the filters so the person can fix them.
        list.queryError = err;
        list.items = [];
        list.total = 0;
        const box = $(".query-error", panel);
        box.replaceChildren(h("span", {}, "The list cannot be shown: "), ...describeError(err), h("p", { class: "hint" }, "Remove or change the filter marked below."));
        box.hidden = false;
        renderChips(list);
        renderList(list);
      } else {
        showError(`Loading ${config.label} failed`, err);
      }
    } finally {
      list.loading = false;
      panel.setAttribute("aria-busy", "false");
      if (list.again) {
        list.again = false;
        void list.load();
      }
    }
  };

  renderHead(list);
  return list;
}

function renderHead(list) {
  const [sign, field] = [list.sort[0], list.sort.slice(1)];
  const row = h(
    "tr",
    {},
    list.columns.map((column) => {
      if (!column.sort) return h("th", { scope: "col", class: column.class }, column.label);
      const active = field === column.sort;
      const direction = active ? (sign === "-" ? "descending" : "ascending") : "none";
      return h(
        "th",
        { scope: "col", "aria-sort": direction, class: column.class },
        h(
          "button",
          {
            type: "button",
            class: "sort",
            dataset: { sort: column.sort },
            title: `Sort by ${column.label.toLowerCase()}`,
            onclick: () => {
              list.sort = active && sign === "+" ? `-${column.sort}` : `+${column.sort}`;
              list.page = 0;
              renderHead(list);
              void list.load();
            },
          },
          column.label,
          h("span", { class: "sort-indicator", "aria-hidden": "true" }, active ? (sign === "-" ? " ▼" : " ▲") : " ↕"),
        ),
      );
    }),
  );
  $("thead", list.panel).replaceChildren(row);
}

function renderChips(list) {
  const chips = $(".chips", list.panel);
  // The server names a refused filter by its position in the list it was sent (it never echoes the text back).
  const problems = list.queryError && Array.isArray(list.queryError.data) ? list.queryError.data : [];
  const refused = problems.filter((d) => d?.field === "filters" && Number.isInteger(d.index)).map((d) => d.index);
  chips.replaceChildren(
    ...list.filters.map((filter, position) => {
      const invalid = refused.includes(position);
      return h(
        "li",
        { class: invalid ? "chip invalid" : "chip", dataset: { filter } },
        h("code", {}, filter),
        invalid ? h("span", { class: "visually-hidden" }, " (refused)") : null,
        h(
          "button",
          {
            type: "button",
            class: "chip-remove",
            "aria-label": `Remove filter ${filter}`,
            onclick: () => {
              list.filters = list.filters.filter((f) => f !== filter);
              list.page = 0;
              renderChips(list);
              void list.load();
              $("input[name=filter]", list.panel).focus();
            },
          },
          "×",
        ),
      );
    }),
  );
  $(".clear-filters", list.panel).hidden = list.filters.length === 0;
}

function renderList(list) {
  const tbody = $("tbody", list.panel);
  const rows = list.items.map((item) => list.renderRow(item));
  if (rows.length === 0) {
    const text = list.queryError ? "Nothing to show until the filter is fixed." : list.filters.length ? "Nothing matches these filters." : list.emptyText;
    rows.push(h("tr", { class: "empty" }, h("td", { colspan: list.columns.length }, text)));
  }
  tbody.replaceChildren(...rows);
  const from = list.total === 0 ? 0 : list.page * list.size + 1;
  const to = Math.min(list.total, list.page * list.size + list.items.length);
  $(".range", list.panel).textContent = list.total === 0 ? "0 items" : `${from}–${to} of ${list.total}`;
  $(".prev", list.panel).disabled = list.page === 0;
  $(".next", list.panel).disabled = (list.page + 1) * list.size >= list.total;
  if (list.countEl) $(list.countEl).textContent = list.queryError ? "" : `(${list.total})`;
}

// ---- tasks --------------------------------------------------------------------------------------------------------

const tasks = createList({
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

function me() {
  return state.profile?.username ?? state.user;
}

function taskRow({ task, dataEntries }) {
  const highlightUntil = state.newTasks.get(task.id);
  const isNew = highlightUntil !== undefined && highlightUntil > Date.now();
  const changed = state.changedTasks.has(task.id);
  const mine = task.assignee && task.assignee === me();
  const row = h(
    "tr",
    { dataset: { taskId: task.id }, class: [isNew ? "new" : "", changed ? "changed" : "", mine ? "mine" : ""].filter(Boolean).join(" ") || null },
    h("td", {}, task.processName ?? h("span", { class: "muted" }, "–"), task.applicationName ? h("div", { class: "muted small" }, task.applicationName) : null),
    h(
      "td",
      { class: "name" },
      h("span", { class: "task-name" }, task.name ?? task.taskDefinitionKey ?? task.id),
      isNew ? h("span", { class: "badge new-badge" }, "New") : null,
      task.businessKey ? h("div", { class: "muted small" }, `Business key ${task.businessKey}`) : null,
      task.url ? h("div", { class: "small" }, h("a", { href: handOver(task.url), target: "_blank", rel: "noopener" }, "Open form")) : null,
      task.lastRefusal ? refusalNote(task.lastRefusal) : null,
    ),
    h("td", { class: "details" }, taskDetails(task, dataEntries)),
    h("td", {}, dateCell(task.createTime)),
    h("td", {}, dateCell(task.dueDate, { overdue: true })),
    h("td", {}, dateCell(task.followUpDate)),
    h("td", { class: "num" }, task.priority ?? h("span", { class: "muted" }, "–")),
    h("td", { dataset: { field: "assignee" } }, task.assignee ? (mine ? h("strong", {}, `${task.assignee} (you)`) : task.assignee) : h("span", { class: "muted" }, "unassigned")),
    h("td", { class: "small" }, candidates(task)),
    h("td", { class: "actions" }, taskActions(task, mine)),
  );
  if (isNew) {
    setTimeout(() => {
      row.classList.remove("new");
      $(".new-badge", row)?.remove();
    }, highlightUntil - Date.now());
  }
  if (changed) {
    state.changedTasks.delete(task.id);
    setTimeout(() => row.classList.remove("changed"), 2000);
  }
  return row;
}

function refusalNote(refusal) {
  const when = refusal.time ? new Date(refusal.time).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" }) : null;
  return h(
    "p",
    { class: "refusal", dataset: { refusal: refusal.interaction } },
    h("span", { "aria-hidden": "true" }, "⚠ "),
    h("strong", {}, `The process engine refused “${refusal.interaction}”`),
    refusal.username || when ? ` (${[refusal.username ? `asked by ${refusal.username}` : null, when].filter(Boolean).join(", ")})` : "",
    `: ${refusal.reason}`,
  );
}

function taskDetails(task, dataEntries) {
  const payload = task.payload && typeof task.payload === "object" ? Object.entries(task.payload) : [];
  return [
    task.description ? h("p", { class: "description" }, task.description) : null,
    payload.length
      ? h(
          "details",
          {},
          h("summary", {}, `Payload (${payload.length} ${payload.length === 1 ? "field" : "fields"})`),
          h("dl", { class: "payload" }, payload.map(([key, value]) => [h("dt", {}, key), h("dd", {}, h("code", {}, jsonValue(value)))])),
        )
      : null,
    dataEntries?.length
      ? h(
          "ul",
          { class: "entries small", "aria-label": "Related workpieces" },
          dataEntries.map((entry) => h("li", {}, h("span", {}, entry.name ?? entry.entryId), ` — ${entry.type ?? entry.entryType}`, entry.currentState ? `, ${entry.currentState}` : "")),
        )
      : null,
    !task.description && !payload.length && !dataEntries?.length ? h("span", { class: "muted" }, "–") : null,
  ];
}

function candidates(task) {
  const groups = task.candidateGroups ?? [];
  const users = task.candidateUsers ?? [];
  if (groups.length === 0 && users.length === 0) return h("span", { class: "muted" }, "–");
  return h(
    "ul",
    { class: "tags" },
    groups.map((g) => h("li", { class: "group", title: "Candidate group", dataset: { candidateGroup: g } }, g, h("span", { class: "kind" }, " group"))),
    users.map((u) => h("li", { class: "person", title: "Candidate user", dataset: { candidateUser: u } }, u)),
  );
}

function taskActions(task, mine) {
  const label = task.name ?? task.id;
  const button = (action, text, onclick) => h("button", { type: "button", dataset: { action }, "aria-label": `${text} “${label}”`, onclick }, text);
  return h(
    "div",
    { class: "buttons" },
    mine ? button("unclaim", "Unclaim", () => interact(task, "unclaim")) : button("claim", "Claim", () => interact(task, "claim")),
    button("defer", "Defer", () => openDefer(task)),
    task.followUpDate ? button("undefer", "Undefer", () => interact(task, "undefer")) : null,
    button("complete", "Complete", () => openComplete(task)),
  );
}

const VERBS = {
  claim: ["claim", "Claimed"],
  unclaim: ["unclaim", "Unclaimed"],
  defer: ["deferral", "Deferred"],
  undefer: ["undeferral", "Undeferred"],
  complete: ["completion", "Completed"],
};

/** POST /api/task/:id/<action>?wait=true and say plainly what happened. */
async function interact(task, action, body) {
  const row = document.querySelector(`tr[data-task-id="${CSS.escape(task.id)}"]`);
  const buttons = row ? [...row.querySelectorAll("button[data-action]")] : [];
  for (const b of buttons) b.disabled = true;
  row?.setAttribute("aria-busy", "true");
  const [noun, done] = VERBS[action];
  const name = task.name ?? task.id;
  hideMessage("error");
  try {
    const response = await api(`/api/task/${encodeURIComponent(task.id)}/${action}?wait=true`, { method: "POST", body });
    if (response.status === 202) {
      notice(`Your ${noun} of “${name}” is accepted; the process engine has not confirmed it yet. The list updates when it does.`, { status: "202", action });
    } else {
      notice(`${done} “${name}”.`, { status: String(response.status), action });
    }
  } catch (err) {
    const context = `${noun[0].toUpperCase()}${noun.slice(1)} of “${name}” failed`;
    if (err.status === 404) err.message = `${err.message}. It may have been completed or is no longer yours to see.`;
    showError(context, err);
  } finally {
    for (const b of buttons) b.disabled = false;
    row?.removeAttribute("aria-busy");
    void tasks.load();
  }
}

// ---- dialogs --------------------------------------------------------------------------------------------------

/** Opens a dialog; `submit` returns an error text to keep it open, or nothing to close it. */
function openDialog(id, subject, prepare, submit) {
  const dialog = $(`#${id}`);
  const form = $("form", dialog);
  const error = $(".dialog-error", dialog);
  $(".dialog-subject", dialog).textContent = subject;
  error.hidden = true;
  prepare(dialog);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const problem = await submit(dialog);
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    dialog.close();
  };
  $(".cancel", dialog).onclick = () => dialog.close();
  dialog.showModal();
}

function openDefer(task) {
  openDialog(
    "defer-dialog",
    `“${task.name ?? task.id}”: hide it until the follow-up date.`,
    (dialog) => {
      const input = $("#defer-date", dialog);
      const start = task.followUpDate ? new Date(task.followUpDate) : new Date(Date.now() + 24 * 3600 * 1000);
      if (!task.followUpDate) start.setHours(9, 0, 0, 0);
      const local = new Date(start.getTime() - start.getTimezoneOffset() * 60000);
      input.value = local.toISOString().slice(0, 16);
      input.focus();
    },
    (dialog) => {
      const value = $("#defer-date", dialog).value;
      const date = new Date(value);
      if (!value || Number.isNaN(date.getTime())) return "Enter a date and time.";
      void interact(task, "defer", date.toISOString());
      return null;
    },
  );
}

function parseObject(text, what) {
  if (!text.trim()) return { value: {} };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { error: `${what} must be a JSON object, like {"approved": true}.` };
    return { value };
  } catch (err) {
    return { error: `${what} is not valid JSON: ${err.message}` };
  }
}

function openComplete(task) {
  openDialog(
    "complete-dialog",
    `“${task.name ?? task.id}”: complete it with these variables.`,
    (dialog) => {
      const area = $("#complete-payload", dialog);
      area.value = "{\n  \n}";
      area.focus();
      area.setSelectionRange(4, 4);
    },
    (dialog) => {
      const { value, error } = parseObject($("#complete-payload", dialog).value, "The payload");
      if (error) return error;
      void interact(task, "complete", value);
      return null;
    },
  );
}

// ---- workpieces -----------------------------------------------------------------------------------------------

const workpieces = createList({
  panel: "panel-workpieces",
  label: "workpieces",
  url: "/api/business-data-entries",
  defaultSort: "-data.lastModifiedDate",
  countEl: "#workpieces-count",
  emptyText: "No workpieces for you.",
  columns: [
    { label: "Name", sort: "data.name" },
    { label: "Type", sort: "data.type" },
    { label: "State", sort: "data.state.state" },
    { label: "Application", sort: "data.applicationName" },
    { label: "Protocol" },
    { label: "Last modified", sort: "data.lastModifiedDate" },
  ],
  renderRow: workpieceRow,
});

function workpieceRow(entry) {
  const protocol = entry.protocol ?? [];
  return h(
    "tr",
    { dataset: { entryType: entry.entryType, entryId: entry.entryId } },
    h(
      "td",
      { class: "name" },
      entry.url ? h("a", { href: handOver(entry.url), target: "_blank", rel: "noopener" }, entry.name ?? entry.entryId) : (entry.name ?? entry.entryId),
      entry.description ? h("div", { class: "muted small" }, entry.description) : null,
    ),
    h("td", {}, entry.type ?? "–", h("div", { class: "muted small" }, entry.entryType)),
    h(
      "td",
      {},
      entry.currentState ?? h("span", { class: "muted" }, "–"),
      entry.currentStateType ? h("span", { class: `badge state ${String(entry.currentStateType).toLowerCase()}` }, entry.currentStateType.replace(/_/g, " ").toLowerCase()) : null,
    ),
    h("td", {}, entry.applicationName ?? "–"),
    h(
      "td",
      { class: "protocol" },
      protocol.length
        ? h(
            "details",
            {},
            h("summary", {}, `${protocol.length} ${protocol.length === 1 ? "entry" : "entries"}`),
            h(
              "ol",
              {},
              protocol.map((p) =>
                h(
                  "li",
                  {},
                  dateCell(p.timestamp),
                  " ",
                  h("strong", {}, p.state ?? ""),
                  p.user ? ` by ${p.user}` : "",
                  p.log ? h("div", { class: "small" }, p.log) : null,
                  p.logDetails ? h("div", { class: "muted small" }, p.logDetails) : null,
                ),
              ),
            ),
          )
        : h("span", { class: "muted" }, "–"),
    ),
    h("td", {}, dateCell(entry.lastModifiedDate)),
  );
}

// ---- tabs -------------------------------------------------------------------------------------------------------

const TABS = ["tasks", "workpieces"];

function selectTab(name, focus = false) {
  state.tab = name;
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    const selected = tab === name;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#panel-${tab}`).hidden = !selected;
    if (selected && focus) button.focus();
  }
  const list = name === "tasks" ? tasks : workpieces;
  if (!list.loaded || list.stale) {
    list.stale = false;
    void list.load();
  }
}

for (const tab of TABS) {
  const button = $(`#tab-${tab}`);
  button.addEventListener("click", () => selectTab(tab));
  button.addEventListener("keydown", (event) => {
    const i = TABS.indexOf(tab);
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      selectTab(TABS[(i + (event.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length], true);
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      selectTab(event.key === "Home" ? TABS[0] : TABS[TABS.length - 1], true);
    }
  });
}

// ---- start menu -----------------------------------------------------------------------------------------------

const startButton = $("#start-button");
const startMenu = $("#start-menu");

function menuItems() {
  return [...startMenu.querySelectorAll("[role=menuitem]:not([aria-disabled=true])")];
}

function openMenu() {
  startMenu.hidden = false;
  startButton.setAttribute("aria-expanded", "true");
  menuItems()[0]?.focus();
}

function closeMenu(focusButton = false) {
  startMenu.hidden = true;
  startButton.setAttribute("aria-expanded", "false");
  if (focusButton) startButton.focus();
}

startButton.addEventListener("click", () => (startMenu.hidden ? openMenu() : closeMenu()));
startButton.addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown") {
    event.preventDefault();
    openMenu();
  }
});
startMenu.addEventListener("keydown", (event) => {
  const items = menuItems();
  const i = items.indexOf(document.activeElement);
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    items[(i + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length]?.focus();
  } else if (event.key === "Escape") {
    closeMenu(true);
  } else if (event.key === "Tab") {
    closeMenu();
  }
});
document.addEventListener("click", (event) => {
  if (!startMenu.hidden && !startMenu.contains(event.target) && event.target !== startButton) closeMenu();
});

async function loadProcesses() {
  const user = state.user;
  let processes = [];
  try {
    processes = await json(await api("/api/processes"));
  } catch (err) {
    showError("Loading the processes you may start failed", err);
  }
  if (user !== state.user) return;
  state.processes = processes;
  startButton.disabled = false;
  const label = (p, how) => [
    h("span", {}, p.processName ?? p.definitionKey),
    h("span", { class: "muted small" }, ` ${p.applicationName}${p.definitionVersion ? ` · version ${p.definitionVersion}` : ""}${how ? ` · ${how}` : ""}`),
  ];
  const item = (p) => {
    const dataset = { process: `${p.applicationName}/${p.definitionKey}`, start: p.startsThroughForm ? "form" : "direct" };
    if (p.startsThroughForm && p.url) {
      // Its start form collects what the process needs and starts it: open the form, as Polyflow's list does.
      return h("a", { role: "menuitem", tabindex: "-1", href: handOver(p.url), target: "_blank", rel: "noopener", dataset, onclick: () => closeMenu() }, ...label(p, "opens its start form"));
    }
    if (p.startsThroughForm) {
      // Needs its form, but no form address is configured (FORM_URLS): say so instead of failing later.
      return h("span", { role: "menuitem", "aria-disabled": "true", class: "muted", tabindex: "-1", dataset, title: "This process starts through its start form, and no address of that form is configured (FORM_URLS)." }, ...label(p, "start form not available here"));
    }
    return h(
      "button",
      {
        type: "button",
        role: "menuitem",
        tabindex: "-1",
        dataset,
        onclick: () => {
          closeMenu();
          openStart(p);
        },
      },
      ...label(p, null),
    );
  };
  const items = processes.length
    ? processes.map((p) => h("li", { role: "none" }, item(p)))
    : [h("li", { role: "none" }, h("span", { role: "menuitem", "aria-disabled": "true", class: "muted" }, "No processes you may start"))];
  startMenu.replaceChildren(...items);
}

function openStart(definition) {
  const name = definition.processName ?? definition.definitionKey;
  openDialog(
    "start-dialog",
    `“${name}” of ${definition.applicationName}${definition.description ? ` — ${definition.description}` : ""}`,
    (dialog) => {
      $("#start-business-key", dialog).value = "";
      $("#start-variables", dialog).value = "{}";
      const link = $(".start-form-link", dialog);
      link.replaceChildren(...(definition.url ? ["This process also has its own start form: ", h("a", { href: handOver(definition.url), target: "_blank", rel: "noopener" }, "open it")] : []));
      link.hidden = !definition.url;
      $("#start-business-key", dialog).focus();
    },
    async (dialog) => {
      const { value: variables, error } = parseObject($("#start-variables", dialog).value, "The variables");
      if (error) return error;
      const businessKey = $("#start-business-key", dialog).value.trim();
      try {
        const response = await api(`/api/processes/${encodeURIComponent(definition.applicationName)}/${encodeURIComponent(definition.definitionKey)}/start`, {
          method: "POST",
          body: { ...(businessKey ? { businessKey } : {}), variables },
        });
        const result = await json(response);
        if (result?.requestId) state.startRequests.set(result.requestId, name);
        notice(`Start of “${name}” requested${result?.requestId ? ` (request ${result.requestId})` : ""}. Its first tasks appear here once the engine has started it.`, {
          status: String(response.status),
          action: "start",
        });
        return null;
      } catch (err) {
        return `Starting failed: ${err.message}${err.type ? ` (${err.type})` : ""}`;
      }
    },
  );
}

// ---- live updates -------------------------------------------------------------------------------------------

function setLive(mode, text) {
  const el = $("#live-status");
  el.dataset.state = mode;
  el.textContent = text;
}

let refreshTimer = null;
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

function closeStream() {
  state.source?.close();
  state.source = null;
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(() => {
    void tasks.load();
    if (workpieces.loaded) void workpieces.load();
  }, POLL_MS);
}

function openStream() {
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
  const source = new EventSource(currentToken() ? streamAddress("/api/events") : `/api/events?user=${encodeURIComponent(user)}`);
  state.source = source;
  setLive("connecting", "Connecting live updates…");
  source.addEventListener("open", () => {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
    setLive("live", "Live");
    // Whatever happened while the stream was down: read the page again.
    if (tasks.loaded) scheduleRefresh("tasks");
  });
  const onTask = (kind) => (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (kind === "task-added") state.newTasks.set(data.id, Date.now() + NEW_HIGHLIGHT_MS);
    if (kind === "task-changed") state.changedTasks.add(data.id);
    if (data.refusal && (!data.refusal.username || data.refusal.username === me())) {
      showError(`The process engine refused your ${data.refusal.interaction}`, { message: data.refusal.reason, type: "INTERACTION_REFUSED" });
    }
    scheduleRefresh("tasks");
  };
  source.addEventListener("task-added", onTask("task-added"));
  source.addEventListener("task-changed", onTask("task-changed"));
  source.addEventListener("task-removed", onTask("task-removed"));
  source.addEventListener("data-entry-changed", () => scheduleRefresh("workpieces"));
  source.addEventListener("process-start-refused", (event) => {
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
const announced = new Set();
const tbodyObserver = new MutationObserver(() => {
  for (const row of document.querySelectorAll("#tasks-table tr.new")) {
    const id = row.dataset.taskId;
    if (announced.has(id)) continue;
    announced.add(id);
    announce(`New task: ${$(".task-name", row)?.textContent ?? id}`);
  }
});
tbodyObserver.observe($("#tasks-table tbody"), { childList: true });

// ---- users ------------------------------------------------------------------------------------------------------

async function chooseUser(id) {
  state.user = id || null;
  state.profile = null;
  state.newTasks.clear();
  state.changedTasks.clear();
  hideMessage("error");
  hideMessage("notice");
  tasks.reset();
  workpieces.reset();
  workpieces.stale = false;
  startMenu.replaceChildren();
  startButton.disabled = true;
  $("#profile").textContent = "";
  if (!state.user) {
    localStorage.removeItem(USER_KEY);
    $("#views").hidden = true;
    $("#choose-user").hidden = false;
    openStream();
    return;
  }
  if (!currentToken()) localStorage.setItem(USER_KEY, state.user);
  $("#views").hidden = false;
  $("#choose-user").hidden = true;
  openStream();
  const user = state.user;
  try {
    const profile = await json(await api("/api/profile"));
    if (user !== state.user) return;
    state.profile = profile;
    $("#profile").textContent = profile.groups?.length ? `groups: ${profile.groups.join(", ")}` : "no groups";
  } catch (err) {
    if (user !== state.user) return;
    showError(`Signing in as ${user} failed`, err);
    return;
  }
  selectTab(state.tab);
  await loadProcesses();
  if (user === state.user && state.pendingStart) {
    const wanted = state.pendingStart;
    state.pendingStart = null;
    const definition = state.processes.find((p) => `${p.applicationName}/${p.definitionKey}` === wanted);
    if (!definition) showError("Starting a process failed", { message: `${user} may not start ${wanted}, or it does not exist`, type: "NOT_FOUND" });
    else if (definition.startsThroughForm && definition.url) window.location.assign(handOver(definition.url));
    else if (definition.startsThroughForm) showError("Starting a process failed", { message: `${definition.processName ?? wanted} starts through its start form, and no address of that form is configured`, type: "CONFLICT" });
    else openStart(definition);
  }
}

/** No (valid) credentials for this gateway: forget the token, stop, and offer the sign-in form instead. */
function signIn(reason) {
  forgetToken();
  closeStream();
  clearInterval(state.pollTimer);
  state.pollTimer = null;
  state.user = null;
  $("#views").hidden = true;
  $("#choose-user").hidden = true;
  $(".user").hidden = true;
  setLive("off", "Live updates off");
  const main = $("#main");
  $("#sign-in", main)?.remove();
  main.prepend(signInForm(reason, () => window.location.reload()));
  $("#access-token").focus();
}

/** Signed in with a token: the user is the token's subject, there is nobody to choose. */
async function initWithToken(select) {
  let profile;
  try {
    profile = await json(await api("/api/profile", { user: null }));
  } catch (err) {
    if (err.status !== 401) showError("Signing in failed", err);
    return;
  }
  select.replaceChildren(h("option", { value: profile.username }, profile.username));
  select.disabled = true;
  $(".user").append(" ", signOutButton());
  await chooseUser(profile.username);
}

async function init() {
  for (const id of ["error", "notice"]) $(`#${id} .dismiss`).addEventListener("click", () => hideMessage(id));
  const select = $("#user");
  select.addEventListener("change", () => void chooseUser(select.value));
  // A link may name the user, a task to show and a process to start (see the top of this file).
  const link = new URLSearchParams(window.location.search);
  state.pendingStart = link.get("start");
  const linkedTask = link.get("task");
  if (linkedTask) {
    tasks.filters = [`task.id=${linkedTask}`];
    renderChips(tasks);
  }
  if (takeTokenFromAddress()) {
    await initWithToken(select);
    document.body.dataset.ready = "true";
    return;
  }
  try {
    state.users = await json(await api("/api/users", { user: null }));
  } catch (err) {
    // The gateway verifies tokens and has no development login: sign in with a token.
    if (err.status === 401 || err.status === 403) signIn("This Taskpool verifies tokens: sign in with an access token issued for it.");
    else showError("Loading the users failed", err);
    document.body.dataset.ready = "true";
    return;
  }
  select.append(...state.users.map((u) => h("option", { value: u.id }, u.displayName && u.displayName !== u.id ? `${u.displayName} (${u.id})` : u.id)));
  const linked = link.get("userId") ?? link.get("user");
  const remembered = localStorage.getItem(USER_KEY);
  const first = [linked, remembered].find((id) => id && state.users.some((u) => u.id === id));
  if (first) {
    select.value = first;
    await chooseUser(first);
  }
  document.body.dataset.ready = "true";
}

void init();
