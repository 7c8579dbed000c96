// The workpieces list: the business data entries of the signed-in user, with their state and protocol.
// @ts-check

import { h } from "../page.js";
import { createList } from "./lists.js";
import { dateCell } from "./render.js";
import { handOver } from "./state.js";

/** @import { DataEntry } from "./api.js" */

export const workpieces = createList({
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

/** @param {DataEntry} entry */
function workpieceRow(entry) {
  const protocol = entry.protocol ?? [];
  return h(
    "tr",
    { dataset: { entryType: entry.entryType, entryId: entry.entryId } },
    h(
      "td",
      { class: "name" },
      entry.url
        ? h("a", { href: handOver(entry.url), target: "_blank", rel: "noopener" }, entry.name ?? entry.entryId)
        : (entry.name ?? entry.entryId),
      entry.description ? h("div", { class: "muted small" }, entry.description) : null,
    ),
    h("td", {}, entry.type ?? "–", h("div", { class: "muted small" }, entry.entryType)),
    h(
      "td",
      {},
      entry.currentState ?? h("span", { class: "muted" }, "–"),
      entry.currentStateType
        ? h(
            "span",
            { class: `badge state ${String(entry.currentStateType).toLowerCase()}` },
            entry.currentStateType.replace(/_/g, " ").toLowerCase(),
          )
        : null,
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
