// The task list's messages: the error and notice boxes above the lists, and announcements for screen readers.
// @ts-check

import { $, h } from "../page.js";

/** @import { Problem } from "./api.js" */

/**
 * @param {"error" | "notice"} id
 * @param {string | (Node | string)[]} content
 * @param {Record<string, string>} [dataset]
 */
function showMessage(id, content, dataset = {}) {
  const box = $(`#${id}`);
  $(".message-text", box).replaceChildren(...[content].flat());
  for (const key of Object.keys(box.dataset)) delete box.dataset[key];
  Object.assign(box.dataset, dataset);
  box.hidden = false;
}

/** @param {"error" | "notice"} id */
export function hideMessage(id) {
  const box = $(`#${id}`);
  box.hidden = true;
  $(".message-text", box).replaceChildren();
}

/**
 * @param {string} text
 * @param {Record<string, string>} [dataset]
 */
export function notice(text, dataset = {}) {
  showMessage("notice", text, dataset);
}

/**
 * An API error as a person reads it: what failed, why, and the details the server gave.
 * @param {Problem} err
 */
export function describeError(err) {
  const parts = [h("strong", {}, err.message || "Something went wrong")];
  if (err.type)
    parts.push(h("span", { class: "error-type" }, ` (${err.type}${err.status ? `, HTTP ${err.status}` : ""})`));
  if (Array.isArray(err.data) && err.data.length > 0) {
    const details = err.data
      .map((item) => (item && typeof item === "object" ? (item.message ?? JSON.stringify(item)) : String(item)))
      .filter((text) => text && text !== err.message);
    if (details.length > 0)
      parts.push(
        h(
          "ul",
          {},
          details.map((text) => h("li", {}, text)),
        ),
      );
  }
  return parts;
}

/**
 * @param {string} context what failed
 * @param {Problem} err
 */
export function showError(context, err) {
  showMessage("error", [h("span", {}, `${context}: `), ...describeError(err)], {
    type: err.type ?? "",
    status: String(err.status ?? ""),
  });
}

/** @param {string} text */
export function announce(text) {
  const el = $("#announcer");
  el.textContent = "";
  setTimeout(() => (el.textContent = text), 50);
}
