// Small renderers the task list's rows share: dates, JSON values.
// @ts-check

import { h } from "../page.js";

/**
 * A date as the person reads it, in their locale; `overdue` marks it when past.
 * @param {string | null | undefined} value an ISO time
 * @param {{ overdue?: boolean }} [options]
 */
export function dateCell(value, { overdue = false } = {}) {
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

/** @param {unknown} value */
export function jsonValue(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
