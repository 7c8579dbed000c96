// What the platform's browser pages (the task list, the cluster dashboard, and the example application's forms,
// which its gateway serves this file to as /forms/shared/page.js) share: the DOM helper, and how a page
// proves who is asking when the gateway verifies tokens (JWT mode).
//
// A token is handed to a page in the address's fragment — `/#access_token=<jwt>` or `/dashboard/#access_token=<jwt>`,
// as an identity provider's redirect or an operator's link does (a fragment never reaches a server or its logs) —
// or pasted into the sign-in form the page shows when the gateway answers 401. It is kept in sessionStorage (this
// tab only, gone with it), sent as `Authorization: Bearer`, and on event streams as `?access_token=` (EventSource
// cannot send headers). A 401 forgets it; "Sign out" too.

const TOKEN_KEY = "taskpool.token";

/** Creates an element: h("td", { class: "x", dataset: { node: "a" } }, "text", child). Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** The token this tab signed in with, or null (then the page asks as the development header user, or anonymously). */
export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Takes a token handed over in the address's fragment into this tab's storage and out of the address bar. */
export function takeTokenFromAddress() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("access_token");
  if (token) {
    rememberToken(token);
    fragment.delete("access_token");
    const rest = fragment.toString();
    history.replaceState(null, "", `${window.location.pathname}${window.location.search}${rest ? `#${rest}` : ""}`);
  }
  return currentToken();
}

/** Keeps `token` for this tab. */
export function rememberToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Request headers with this tab's token, if it has one. */
export function withCredentials(headers = {}) {
  const token = currentToken();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

/** An event stream's address with this tab's token (EventSource sends no headers). */
export function streamAddress(path) {
  const token = currentToken();
  if (!token) return path;
  const url = new URL(path, window.location.origin);
  url.searchParams.set("access_token", token);
  return `${url.pathname}${url.search}`;
}

/**
 * A sign-in form for a token: shown when the gateway refused the page (401), with the reason. Submitting keeps the
 * token for this tab and calls `onToken`.
 */
export function signInForm(reason, onToken) {
  const input = h("textarea", { id: "access-token", name: "token", rows: "3", required: true, spellcheck: "false", autocomplete: "off", placeholder: "eyJhbGciOi…" });
  const form = h(
    "form",
    {
      class: "sign-in",
      id: "sign-in",
      onsubmit: (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        rememberToken(token);
        onToken(token);
      },
    },
    h("h2", {}, "Sign in"),
    h("p", { class: "reason", role: "alert" }, reason),
    h("label", { for: "access-token" }, "Access token (JWT) issued for Taskpool"),
    input,
    h("button", { type: "submit" }, "Sign in"),
  );
  return form;
}

/** "Sign out" for a page signed in with a token: forgets it and reloads. */
export function signOutButton() {
  return h("button", { type: "button", class: "sign-out", id: "sign-out", onclick: () => (forgetToken(), window.location.reload()) }, "Sign out");
}
