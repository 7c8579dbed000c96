/* global window, document, location, localStorage, fetch, FormData, URLSearchParams, Node, history */
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
// and is kept for the tab (the platform pages' page.js, served here as shared/page.js).

import { currentToken, forgetToken, rememberToken, signInForm, signOutButton, withCredentials } from "./shared/page.js";

const USER_KEY = "approval.user";
const state = { user: null, environment: null };

// ---- DOM helpers ----

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const view = () => document.getElementById("view");

function show(...children) {
  view().replaceChildren(...children);
}

function message(kind, text, details = []) {
  return h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text, details.length ? h("ul", {}, details.map((d) => h("li", {}, d))) : null);
}

function errorMessage(err) {
  const details = Array.isArray(err?.data) ? err.data.map((d) => d.message ?? `${d.field}: ${d.type}`) : [];
  return message("error", err?.message ?? String(err), details);
}

function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

function formatAmount(amount, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "—")]));
}

function statusBadge(status) {
  return h("span", { class: `status ${status}` }, status);
}

// ---- API ----

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

/** Shows the sign-in form instead of the view; the token it takes is kept for the tab and the route runs again. */
function askForToken(reason) {
  forgetToken();
  show(signInForm(`Sign in with an access token issued for Taskpool: ${reason}.`, () => void route()));
  document.getElementById("access-token").focus();
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
  if (select) select.value = id;
}

async function loadEnvironment() {
  state.environment = await api("GET", "/api/environment");
  const users = state.environment.users;
  const remembered = localStorage.getItem(USER_KEY);
  const known = (id) => users.some((u) => u.id === id);
  state.user = [userFromLink(), remembered].find((id) => id && known(id)) ?? users[0]?.id ?? null;
  if (state.user) localStorage.setItem(USER_KEY, state.user);
  const select = document.getElementById("user-select");
  select.replaceChildren(...users.map((u) => h("option", { value: u.id }, u.displayName ?? u.username)));
  select.value = state.user ?? "";
  select.addEventListener("change", () => {
    state.user = select.value;
    localStorage.setItem(USER_KEY, state.user);
    route();
  });
  const link = document.getElementById("tasklist-link");
  link.href = state.environment.tasklistUrl;
}

function userOptions(selected) {
  return state.environment.users.map((u) => h("option", { value: u.username, selected: u.username === selected }, u.displayName ?? u.username));
}

// ---- views ----

function requestFields(request = {}) {
  return [
    h("div", { class: "field" }, h("label", { for: "subject" }, "Subject"), h("input", { id: "subject", name: "subject", required: true, maxlength: 300, value: request.subject ?? "" })),
    h(
      "div",
      { class: "row" },
      h("div", { class: "field" }, h("label", { for: "amount" }, "Amount"), h("input", { id: "amount", name: "amount", type: "number", min: "0.01", step: "0.01", required: true, value: request.amount ?? "" })),
      h("div", { class: "field" }, h("label", { for: "currency" }, "Currency"), h("input", { id: "currency", name: "currency", required: true, pattern: "[A-Za-z]{3}", maxlength: 3, value: request.currency ?? "EUR" })),
      h("div", { class: "field" }, h("label", { for: "applicant" }, "Applicant"), h("select", { id: "applicant", name: "applicant" }, userOptions(request.applicant ?? currentUsername()))),
    ),
  ];
}

function currentUsername() {
  return state.environment.users.find((u) => u.id === state.user)?.username ?? state.user;
}

function readRequest(form) {
  const data = new FormData(form);
  return {
    subject: String(data.get("subject") ?? "").trim(),
    amount: Number(data.get("amount")),
    currency: String(data.get("currency") ?? "").trim().toUpperCase(),
    applicant: String(data.get("applicant") ?? ""),
  };
}

/** Runs a submit with its buttons disabled; shows the error above the form. */
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
  const form = h("form", { class: "card" }, requestFields(), h("div", { class: "actions" }, h("button", { type: "submit" }, "Submit request")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void submitting(form, async () => {
      const request = await api("POST", "/api/request", readRequest(form));
      location.hash = `#/approval-request/${encodeURIComponent(request.id)}?submitted=1`;
    });
  });
  show(h("h1", {}, "New approval request"), form);
}

async function requestView(id, params) {
  const request = await api("GET", `/api/request/${encodeURIComponent(id)}`);
  show(
    params.get("submitted") ? message("ok", "Your request is submitted. The approvers find it in their task list.") : null,
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
          h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "State"), h("th", {}, "By"), h("th", {}, "Note"))),
          h(
            "tbody",
            {},
            request.history.map((entry) => h("tr", {}, h("td", {}, formatDate(entry.time)), h("td", {}, statusBadge(entry.status)), h("td", {}, entry.username ?? "—"), h("td", {}, entry.logNotes ?? entry.log ?? ""))),
          ),
        ),
  );
}

async function requestsView() {
  const requests = await api("GET", "/api/request");
  show(
    h("h1", {}, "My requests"),
    requests.length === 0
      ? h("p", {}, "No requests yet. ", h("a", { href: "#/start" }, "Submit one."))
      : h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", {}, "Subject"), h("th", {}, "Applicant"), h("th", {}, "Amount"), h("th", {}, "Status"), h("th", {}, "Submitted"))),
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

function taskFacts(task) {
  return facts([
    ["Task", task.name],
    ["Assignee", task.assignee ?? "nobody yet (submitting claims it for you)"],
    ["Due", formatDate(task.dueDate)],
    ["Priority", task.priority === null ? "—" : String(task.priority)],
  ]);
}

function done(text) {
  show(message("ok", text), h("p", {}, h("a", { href: state.environment.tasklistUrl }, "Back to the task list")));
}

async function approveView(taskId) {
  const { task, approvalRequest: request } = await api("GET", `/api/approve-request/id/${encodeURIComponent(taskId)}`);
  const comment = h("textarea", { id: "comment", name: "comment", maxlength: 10000 });
  const decide = (decision) => (event) => {
    event.preventDefault();
    void submitting(form, async () => {
      await api("POST", `/api/approve-request/id/${encodeURIComponent(taskId)}`, { decision, comment: comment.value || null });
      done(`Done: the request is ${{ APPROVE: "approved", REJECT: "rejected", RETURN: "returned to " + request.originator }[decision]}.`);
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

async function amendView(taskId) {
  const { task, approvalRequest: request, comment: reviewerComment } = await api("GET", `/api/amend-request/id/${encodeURIComponent(taskId)}`);
  const comment = h("textarea", { id: "comment", name: "comment", maxlength: 10000 });
  const form = h("form", { class: "card" }, requestFields(request), h("div", { class: "field" }, h("label", { for: "comment" }, "Your comment"), comment));
  const act = (action) => (event) => {
    event.preventDefault();
    if (action === "RESUBMIT" && !form.reportValidity()) return;
    void submitting(form, async () => {
      const body = { action, comment: comment.value || null };
      if (action === "RESUBMIT") body.approvalRequest = readRequest(form);
      await api("POST", `/api/amend-request/id/${encodeURIComponent(taskId)}`, body);
      done(action === "RESUBMIT" ? "Done: the request is resubmitted for approval." : "Done: the request is cancelled.");
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
    h("div", { class: "card" }, facts([["Returned with", reviewerComment ?? "no comment"], ["Status", statusBadge(request.status)]])),
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
