// What the platform's browser pages (the task list, the cluster dashboard, and the example application's forms,
// which its gateway serves this file to as /forms/shared/page.js) share: the DOM helper, and how a page
// proves who is asking when the gateway verifies tokens (JWT mode).
//
// A token is handed to a page in the address's fragment — `/#access_token=<jwt>` or `/dashboard/#access_token=<jwt>`,
// as an identity provider's redirect or an operator's link does (a fragment never reaches a server or its logs) —
// or pasted into the sign-in form the page shows when the gateway answers 401. It is kept in sessionStorage (this
// tab only, gone with it), sent as `Authorization: Bearer`, and on event streams as `?access_token=` (EventSource
// cannot send headers). A 401 forgets it; "Sign out" too.
// @ts-check

const TOKEN_KEY = "taskpool.token";

/** An attribute's value for `h`: true sets it empty, false, null and undefined leave it out. */
/** @typedef {string | number | boolean | null | undefined} AttributeValue */
/**
 * The attributes of `h`: `class`, `dataset` (the data-* attributes), `on<event>` listeners, and any other attribute.
 * @typedef {{
 *   class?: string | null,
 *   dataset?: Record<string, string>,
 *   [name: string]: AttributeValue | Record<string, string> | ((event: Event) => unknown),
 * }} Attributes
 */
/** @typedef {Node | string | number | boolean | null | undefined} Leaf */
/** A child of `h`: an element or text, or arrays of them (two levels deep); null, undefined and false are left out. */
/** @typedef {Leaf | Leaf[] | (Leaf | Leaf[])[]} Child */

/**
 * Creates an element: h("td", { class: "x", dataset: { node: "a" } }, "text", child). Text is never parsed as HTML.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes | null} [attrs]
 * @param {Child[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "class") el.className = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Child[]} children
 */
function append(el, children) {
  for (const child of children) {
    if (Array.isArray(child)) append(el, child);
    else if (child === undefined || child === null || child === false) continue;
    else el.append(child instanceof Node ? child : String(child));
  }
}

/**
 * The element `selector` finds under `root` (the document by default), as an instance of `type` (HTMLElement by
 * default). The pages' markup has every element the code asks for: a missing or different one is a bug, and throws.
 * `find` is for the elements that may be absent.
 * @template {Element} [E=HTMLElement]
 * @param {string} selector
 * @param {ParentNode} [root]
 * @param {{ new (): E, prototype: E }} [type]
 * @returns {E}
 */
export function $(selector, root = document, type) {
  const el = root.querySelector(selector);
  if (!(el instanceof (type ?? HTMLElement))) throw new Error(`The page has no ${type?.name ?? "element"} ${selector}`);
  return /** @type {E} */ (el);
}

/**
 * The element `selector` finds under `root`, or null.
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {HTMLElement | null}
 */
export function find(selector, root = document) {
  const el = root.querySelector(selector);
  return el instanceof HTMLElement ? el : null;
}

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

/**
 * Keeps `token` for this tab.
 * @param {string} token
 */
export function rememberToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Request headers with this tab's token, if it has one.
 * @param {Record<string, string>} [headers]
 * @returns {Record<string, string>}
 */
export function withCredentials(headers = {}) {
  const token = currentToken();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

/**
 * An event stream's address with this tab's token (EventSource sends no headers).
 * @param {string} path
 */
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
 * @param {string} reason
 * @param {(token: string) => void} onToken
 */
export function signInForm(reason, onToken) {
  const input = h("textarea", {
    id: "access-token",
    name: "token",
    rows: "3",
    required: true,
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "eyJhbGciOi…",
  });
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
  return h(
    "button",
    { type: "button", class: "sign-out", id: "sign-out", onclick: () => (forgetToken(), window.location.reload()) },
    "Sign out",
  );
}
