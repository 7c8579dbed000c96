// The forms of the example application "Request Approval": plain JavaScript, no build step. Routes (the
// platform's form URLs point at them):
//   #/start                              submit a new request
//   #/tasks/approve-request/<taskId>     decide on a request (approve, reject, return)
//   #/tasks/amend-request/<taskId>       amend a returned request and resubmit it, or cancel it
//   #/approval-request/<requestId>       a request and its history
//   #/requests                           the requests of the current user
// The acting user comes from the link: ?userId=<id> (Polyflow's hand-over, which task lists fill in from the
// %userId% of the form URL) or ?user=<id>, in the query or after the route (#/start?userId=kermit); else the one
// chosen last (localStorage). Every API call names them in the X-Current-User-ID header. Text from the server is
// only ever set as text, never as HTML.
// Where the gateway verifies tokens (JWT mode), the token names the user instead: it comes after the route
// (#/requests?access_token=<jwt>, never sent to a server) or from the sign-in form shown when the API answers 401,
// and is kept for the tab (the platform pages' page.js, served here as shared/page.js, whose `h` builds the DOM).
// @ts-check

import {
  $,
  currentToken,
  forgetToken,
  h,
  rememberToken,
  signInForm,
  signOutButton,
  withCredentials,
} from "./shared/page.js";

// ---- what the application's API answers (apps/approval/approval.service.ts, requests.ts) ----

/** @typedef {{ id: string, username: string, displayName: string }} User */
/** @typedef {{ applicationName: string, tasklistUrl: string, users: User[] }} Environment GET /api/environment */
/** @typedef {{ subject: string, applicant: string, amount: number, currency: string }} ApprovalRequestDraft */
/**
 * @typedef {ApprovalRequestDraft & {
 *   id: string, originator: string, status: string, processInstanceId: string | null, revision: number,
 *   createdAt: string, updatedAt: string
 * }} ApprovalRequest
 */
/**
 * @typedef {object} RequestLogEntry
 * @property {string} time
 * @property {string} status
 * @property {string | null} username
 * @property {string | null} log
 * @property {string | null} logNotes
 */
/** @typedef {ApprovalRequest & { history: RequestLogEntry[] }} RequestWithHistory GET /api/request/:id */
/** @typedef {{ name: string, assignee: string | null, dueDate: string | null, priority: number | null }} TaskInfo */
/** @typedef {{ task: TaskInfo, approvalRequest: ApprovalRequest }} ApproveForm GET /api/approve-request/id/:id */
/** @typedef {ApproveForm & { comment: string | null }} AmendForm GET /api/amend-request/id/:id */
/** @typedef {{ message?: string, data?: unknown }} Problem an error answer, `{ type, message, data }` */
/** @typedef {import("./shared/page.js").Child} Child */

const USER_KEY = "approval.user";
const state = {
  /** @type {string | null} */
  user: null,
  /** @type {Environment} */
  environment: { applicationName: "", tasklistUrl: "", users: [] },
};

// ---- DOM helpers ----

const view = () => $("#view");

/**
 * Replaces the view with `children`, leaving out the nulls (replaceChildren would show them as "null").
 * @param {(Node | null)[]} children
 */
function show(...children) {
  view().replaceChildren(...children.filter((child) => child !== null));
}

/**
 * @param {"ok" | "error"} kind
 * @param {string} text
 * @param {string[]} [details]
 */
function message(kind, text, details = []) {
  return h(
    "div",
    { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" },
    text,
    details.length
      ? h(
          "ul",
          {},
          details.map((d) => h("li", {}, d)),
        )
      : null,
  );
}

/**
 * An error as the person reads it: the API's message and the details it gave (a validation error names fields).
 * @param {unknown} err an Error, or the API's error answer
 */
function errorMessage(err) {
  const problem = /** @type {Problem | null | undefined} */ (err);
  const details = Array.isArray(problem?.data) ? problem.data.map((d) => d.message ?? `${d.field}: ${d.type}`) : [];
  return message("error", problem?.message ?? String(err), details);
}

/** @param {string | null | undefined} value */
function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

/**
 * @param {number} amount
 * @param {string} currency
 */
function formatAmount(amount, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

/** @param {[string, Child][]} pairs */
function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]),
  );
}

/** @param {string} status */
function statusBadge(status) {
  return h("span", { class: `status ${status}` }, status);
}

// ---- API ----

/**
 * Calls the application's API as the current user; throws the error answer (or SignInNeeded on 401).
 * @param {"GET" | "POST"} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>} the parsed JSON answer, typed where it is used
 */
async function api(method, path, body) {
  const headers = withCredentials({ Accept: "application/json" });
  if (state.user && !currentToken()) headers["X-Current-User-ID"] = state.user;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (response.status === 401) throw new SignInNeeded(data?.message ?? "no valid credentials");
  if (!response.ok) throw data ?? { message: `${response.status} ${response.statusText}` };
  return data;
}

/** The API refused the credentials (none, expired, or the header where tokens are required). */
class SignInNeeded extends Error {}

/**
 * Shows the sign-in form instead of the view; the token it takes is kept for the tab and the route runs again.
 * @param {string} reason
 */
function askForToken(reason) {
  forgetToken();
  show(signInForm(`Sign in with an access token issued for Taskpool: ${reason}.`, () => void route()));
  $("#access-token").focus();
}

/** A token handed over after the route (#/…?access_token=…): kept for the tab and taken out of the address. */
function takeTokenFromLink() {
  const [path, query] = location.hash.split("?");
  const params = new URLSearchParams(query ?? "");
  const token = params.get("access_token");
  if (!token) return;
  rememberToken(token);
  params.delete("access_token");
  const rest = params.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}${path}${rest ? `?${rest}` : ""}`);
}

/** Signed in with a token: the token names the user, so the header's user choice is replaced by "Sign out". */
function showTokenUser() {
  const label = document.querySelector("label.user");
  if (currentToken() && label) label.replaceWith(signOutButton());
}

// ---- user ----

/** The user a link hands over, if it names one: after the route first (where hash routers keep it), then the query. */
function userFromLink() {
  const afterRoute = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const query = new URLSearchParams(location.search);
  return afterRoute.get("userId") ?? afterRoute.get("user") ?? query.get("userId") ?? query.get("user");
}

/** Acts for the user the link names, when it names a known one (a link followed later may name another). */
function takeUserFromLink() {
  const id = userFromLink();
  if (!id || id === state.user || !state.environment.users.some((u) => u.id === id)) return;
  state.user = id;
  localStorage.setItem(USER_KEY, id);
  const select = document.getElementById("user-select");
  if (select instanceof HTMLSelectElement) select.value = id;
}

async function loadEnvironment() {
  state.environment = await api("GET", "/api/environment");
  const users = state.environment.users;
  const remembered = localStorage.getItem(USER_KEY);
  const known = (/** @type {string | null} */ id) => users.some((u) => u.id === id);
  state.user = [userFromLink(), remembered].find((id) => id && known(id)) ?? users[0]?.id ?? null;
  if (state.user) localStorage.setItem(USER_KEY, state.user);
  const select = $("#user-select", document, HTMLSelectElement);
  select.replaceChildren(...users.map((u) => h("option", { value: u.id }, u.displayName ?? u.username)));
  select.value = state.user ?? "";
  select.addEventListener("change", () => {
    state.user = select.value;
    localStorage.setItem(USER_KEY, select.value);
    route();
  });
  const link = $("#tasklist-link", document, HTMLAnchorElement);
  link.href = state.environment.tasklistUrl;
}

/** @param {string | null} selected a username */
function userOptions(selected) {
  return state.environment.users.map((u) =>
    h("option", { value: u.username, selected: u.username === selected }, u.displayName ?? u.username),
  );
}

// ---- views ----

/** @param {Partial<ApprovalRequestDraft>} [request] */
function requestFields(request = {}) {
  return [
    h(
      "div",
      { class: "field" },
      h("label", { for: "subject" }, "Subject"),
      h("input", { id: "subject", name: "subject", required: true, maxlength: 300, value: request.subject ?? "" }),
    ),
    h(
      "div",
      { class: "row" },
      h(
        "div",
        { class: "field" },
        h("label", { for: "amount" }, "Amount"),
        h("input", {
          id: "amount",
          name: "amount",
          type: "number",
          min: "0.01",
          step: "0.01",
          required: true,
          value: request.amount ?? "",
        }),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "currency" }, "Currency"),
        h("input", {
          id: "currency",
          name: "currency",
          required: true,
          pattern: "[A-Za-z]{3}",
          maxlength: 3,
          value: request.currency ?? "EUR",
        }),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "applicant" }, "Applicant"),
        h("select", { id: "applicant", name: "applicant" }, userOptions(request.applicant ?? currentUsername())),
      ),
    ),
  ];
}

function currentUsername() {
  return state.environment.users.find((u) => u.id === state.user)?.username ?? state.user;
}

/**
 * @param {HTMLFormElement} form
 * @returns {ApprovalRequestDraft}
 */
function readRequest(form) {
  const data = new FormData(form);
  return {
    subject: String(data.get("subject") ?? "").trim(),
    amount: Number(data.get("amount")),
    currency: String(data.get("currency") ?? "")
      .trim()
      .toUpperCase(),
    applicant: String(data.get("applicant") ?? ""),
  };
}

/**
 * Runs a submit with its buttons disabled; shows the error above the form.
 * @param {HTMLFormElement} form
 * @param {() => Promise<void>} work
 */
async function submitting(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  buttons.forEach((b) => (b.disabled = true));
  form.querySelector(".message")?.remove();
  try {
    await work();
  } catch (err) {
    form.prepend(errorMessage(err));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function startView() {
  const form = h(
    "form",
    { class: "card" },
    requestFields(),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Submit request")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void submitting(form, async () => {
      const request = await api("POST", "/api/request", readRequest(form));
      location.hash = `#/approval-request/${encodeURIComponent(request.id)}?submitted=1`;
    });
  });
  show(h("h1", {}, "New approval request"), form);
}

/**
 * @param {string} id
 * @param {URLSearchParams} params
 */
async function requestView(id, params) {
  /** @type {RequestWithHistory} */
  const request = await api("GET", `/api/request/${encodeURIComponent(id)}`);
  show(
    params.get("submitted")
      ? message("ok", "Your request is submitted. The approvers find it in their task list.")
      : null,
    h("h1", {}, `${request.subject} for ${request.applicant}`),
    h(
      "div",
      { class: "card" },
      facts([
        ["Status", statusBadge(request.status)],
        ["Amount", formatAmount(request.amount, request.currency)],
        ["Applicant", request.applicant],
        ["Submitted by", request.originator],
        ["Submitted", formatDate(request.createdAt)],
        ["Revision", String(request.revision)],
        ["Request id", request.id],
      ]),
    ),
    h("h2", {}, "History"),
    request.history.length === 0
      ? h("p", { class: "muted" }, "Nothing yet: the process records the submission in a moment.")
      : h(
          "table",
          {},
          h(
            "thead",
            {},
            h("tr", {}, h("th", {}, "When"), h("th", {}, "State"), h("th", {}, "By"), h("th", {}, "Note")),
          ),
          h(
            "tbody",
            {},
            request.history.map((entry) =>
              h(
                "tr",
                {},
                h("td", {}, formatDate(entry.time)),
                h("td", {}, statusBadge(entry.status)),
                h("td", {}, entry.username ?? "—"),
                h("td", {}, entry.logNotes ?? entry.log ?? ""),
              ),
            ),
          ),
        ),
  );
}

async function requestsView() {
  /** @type {ApprovalRequest[]} */
  const requests = await api("GET", "/api/request");
  show(
    h("h1", {}, "My requests"),
    requests.length === 0
      ? h("p", {}, "No requests yet. ", h("a", { href: "#/start" }, "Submit one."))
      : h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "Subject"),
              h("th", {}, "Applicant"),
              h("th", {}, "Amount"),
              h("th", {}, "Status"),
              h("th", {}, "Submitted"),
            ),
          ),
          h(
            "tbody",
            {},
            requests.map((r) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `#/approval-request/${encodeURIComponent(r.id)}` }, r.subject)),
                h("td", {}, r.applicant),
                h("td", { class: "number" }, formatAmount(r.amount, r.currency)),
                h("td", {}, statusBadge(r.status)),
                h("td", {}, formatDate(r.createdAt)),
              ),
            ),
          ),
        ),
  );
}

/** @param {TaskInfo} task */
function taskFacts(task) {
  return facts([
    ["Task", task.name],
    ["Assignee", task.assignee ?? "nobody yet (submitting claims it for you)"],
    ["Due", formatDate(task.dueDate)],
    ["Priority", task.priority === null ? "—" : String(task.priority)],
  ]);
}

/** @param {string} text */
function done(text) {
  show(message("ok", text), h("p", {}, h("a", { href: state.environment.tasklistUrl }, "Back to the task list")));
}

/** @param {string} taskId */
async function approveView(taskId) {
  /** @type {ApproveForm} */
  const { task, approvalRequest: request } = await api("GET", `/api/approve-request/id/${encodeURIComponent(taskId)}`);
  const comment = h("textarea", { id: "comment", name: "comment", maxlength: 10000 });
  /** @param {"APPROVE" | "REJECT" | "RETURN"} decision */
  const decide = (decision) => (/** @type {Event} */ event) => {
    event.preventDefault();
    void submitting(form, async () => {
      await api("POST", `/api/approve-request/id/${encodeURIComponent(taskId)}`, {
        decision,
        comment: comment.value || null,
      });
      done(
        `Done: the request is ${{ APPROVE: "approved", REJECT: "rejected", RETURN: "returned to " + request.originator }[decision]}.`,
      );
    });
  };
  const form = h(
    "form",
    { class: "card" },
    h("div", { class: "field" }, h("label", { for: "comment" }, "Comment"), comment),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", onclick: decide("APPROVE") }, "Approve"),
      h("button", { type: "button", class: "danger", onclick: decide("REJECT") }, "Reject"),
      h("button", { type: "button", class: "secondary", onclick: decide("RETURN") }, "Return for amendment"),
    ),
  );
  show(
    h("h1", {}, "Approve request"),
    h(
      "div",
      { class: "card" },
      facts([
        ["Subject", request.subject],
        ["Applicant", request.applicant],
        ["Amount", formatAmount(request.amount, request.currency)],
        ["Submitted by", request.originator],
        ["Request", h("a", { href: `#/approval-request/${encodeURIComponent(request.id)}` }, request.id)],
      ]),
    ),
    h("div", { class: "card" }, taskFacts(task)),
    form,
  );
}

/** @param {string} taskId */
async function amendView(taskId) {
  /** @type {AmendForm} */
  const {
    task,
    approvalRequest: request,
    comment: reviewerComment,
  } = await api("GET", `/api/amend-request/id/${encodeURIComponent(taskId)}`);
  const comment = h("textarea", { id: "comment", name: "comment", maxlength: 10000 });
  const form = h(
    "form",
    { class: "card" },
    requestFields(request),
    h("div", { class: "field" }, h("label", { for: "comment" }, "Your comment"), comment),
  );
  /** @param {"RESUBMIT" | "CANCEL"} action */
  const act = (action) => (/** @type {Event} */ event) => {
    event.preventDefault();
    if (action === "RESUBMIT" && !form.reportValidity()) return;
    void submitting(form, async () => {
      /** @type {{ action: string, comment: string | null, approvalRequest?: ApprovalRequestDraft }} */
      const body = { action, comment: comment.value || null };
      if (action === "RESUBMIT") body.approvalRequest = readRequest(form);
      await api("POST", `/api/amend-request/id/${encodeURIComponent(taskId)}`, body);
      done(
        action === "RESUBMIT" ? "Done: the request is resubmitted for approval." : "Done: the request is cancelled.",
      );
    });
  };
  form.append(
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", onclick: act("RESUBMIT") }, "Resubmit"),
      h("button", { type: "button", class: "danger", onclick: act("CANCEL") }, "Cancel request"),
    ),
  );
  show(
    h("h1", {}, "Amend request"),
    h(
      "div",
      { class: "card" },
      facts([
        ["Returned with", reviewerComment ?? "no comment"],
        ["Status", statusBadge(request.status)],
      ]),
    ),
    h("div", { class: "card" }, taskFacts(task)),
    form,
  );
}

// ---- router ----

async function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query ?? "");
  const parts = (path || "/requests").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "start") startView();
    else if (parts[0] === "tasks" && parts[1] === "approve-request" && parts[2]) await approveView(parts[2]);
    else if (parts[0] === "tasks" && parts[1] === "amend-request" && parts[2]) await amendView(parts[2]);
    else if (parts[0] === "approval-request" && parts[1]) await requestView(parts[1], params);
    else if (parts[0] === "requests") await requestsView();
    else show(message("error", `Nothing here: #${path}`), h("p", {}, h("a", { href: "#/requests" }, "My requests")));
  } catch (err) {
    if (err instanceof SignInNeeded) askForToken(err.message);
    else show(errorMessage(err));
  }
}

window.addEventListener("hashchange", () => {
  takeTokenFromLink();
  takeUserFromLink();
  void route();
});
try {
  takeTokenFromLink();
  await loadEnvironment();
  showTokenUser();
  await route();
} catch (err) {
  show(errorMessage(err));
}
