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
//
// This module is the page's start: the tabs, the users and sign-in. The rest is in tasklist/: api.js (the REST
// calls and their DTOs), lists.js (paged, sortable, filterable lists), tasks.js and workpieces.js (their rows and
// actions), dialogs.js, start-menu.js, live.js (the event stream), messages.js, render.js and state.js.
// @ts-check

import { $, currentToken, find, forgetToken, h, signInForm, signOutButton, takeTokenFromAddress } from "./page.js";
import { ApiError, api, json, problemOf, whenSignInEnds } from "./tasklist/api.js";
import { renderChips } from "./tasklist/lists.js";
import { closeStream, openStream, setLive } from "./tasklist/live.js";
import { hideMessage, showError } from "./tasklist/messages.js";
import { clearStartMenu, loadProcesses, openStart } from "./tasklist/start-menu.js";
import { USER_KEY, handOver, state } from "./tasklist/state.js";
import { tasks } from "./tasklist/tasks.js";
import { workpieces } from "./tasklist/workpieces.js";

/** @import { Profile, User } from "./tasklist/api.js" */

// ---- tabs -------------------------------------------------------------------------------------------------------

/** @type {["tasks", "workpieces"]} */
const TABS = ["tasks", "workpieces"];

/**
 * @param {"tasks" | "workpieces"} name
 * @param {boolean} [focus]
 */
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

// ---- users ------------------------------------------------------------------------------------------------------

/**
 * Acts for user `id` (none: ""), from scratch: lists, start menu, event stream.
 * @param {string} id
 */
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
  clearStartMenu();
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
    /** @type {Profile} */
    const profile = await json(await api("/api/profile"));
    if (user !== state.user) return;
    state.profile = profile;
    $("#profile").textContent = profile.groups?.length ? `groups: ${profile.groups.join(", ")}` : "no groups";
  } catch (err) {
    if (user !== state.user) return;
    showError(`Signing in as ${user} failed`, problemOf(err));
    return;
  }
  selectTab(state.tab);
  await loadProcesses();
  if (user === state.user && state.pendingStart) {
    const wanted = state.pendingStart;
    state.pendingStart = null;
    const definition = state.processes.find((p) => `${p.applicationName}/${p.definitionKey}` === wanted);
    if (!definition)
      showError("Starting a process failed", {
        message: `${user} may not start ${wanted}, or it does not exist`,
        type: "NOT_FOUND",
      });
    else if (definition.startsThroughForm && definition.url) window.location.assign(handOver(definition.url));
    else if (definition.startsThroughForm)
      showError("Starting a process failed", {
        message: `${definition.processName ?? wanted} starts through its start form, and no address of that form is configured`,
        type: "CONFLICT",
      });
    else openStart(definition);
  }
}

/**
 * No (valid) credentials for this gateway: forget the token, stop, and offer the sign-in form instead.
 * @param {string} reason
 */
function signIn(reason) {
  forgetToken();
  closeStream();
  clearInterval(state.pollTimer);
  state.pollTimer = undefined;
  state.user = null;
  $("#views").hidden = true;
  $("#choose-user").hidden = true;
  $(".user").hidden = true;
  setLive("off", "Live updates off");
  const main = $("#main");
  find("#sign-in", main)?.remove();
  main.prepend(signInForm(reason, () => window.location.reload()));
  $("#access-token").focus();
}

/**
 * Signed in with a token: the user is the token's subject, there is nobody to choose.
 * @param {HTMLSelectElement} select
 */
async function initWithToken(select) {
  /** @type {Profile} */
  let profile;
  try {
    profile = await json(await api("/api/profile", { user: null }));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError("Signing in failed", problemOf(err));
    return;
  }
  select.replaceChildren(h("option", { value: profile.username }, profile.username));
  select.disabled = true;
  $(".user").append(" ", signOutButton());
  await chooseUser(profile.username);
}

async function init() {
  whenSignInEnds(signIn);
  for (const id of /** @type {const} */ (["error", "notice"]))
    $(`#${id} .dismiss`).addEventListener("click", () => hideMessage(id));
  const select = $("#user", document, HTMLSelectElement);
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
    /** @type {User[]} */
    const users = await json(await api("/api/users", { user: null }));
    state.users = users;
  } catch (err) {
    // The gateway verifies tokens and has no development login: sign in with a token.
    if (err instanceof ApiError && (err.status === 401 || err.status === 403))
      signIn("This Taskpool verifies tokens: sign in with an access token issued for it.");
    else showError("Loading the users failed", problemOf(err));
    document.body.dataset.ready = "true";
    return;
  }
  select.append(
    ...state.users.map((u) =>
      h("option", { value: u.id }, u.displayName && u.displayName !== u.id ? `${u.displayName} (${u.id})` : u.id),
    ),
  );
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
