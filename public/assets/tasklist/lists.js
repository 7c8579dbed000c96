// The task list's paged, sortable, filterable lists (tasks and workpieces): filter chips, column heads, pager.
// @ts-check

import { $, h } from "../page.js";
import { ApiError, api, json, problemOf } from "./api.js";
import { describeError, showError } from "./messages.js";
import { state } from "./state.js";

/** @typedef {{ label: string, sort?: string, class?: string }} Column a column; `sort` names its sort field */
/**
 * What a list shows and where.
 * @template T
 * @typedef {object} ListConfig
 * @property {string} panel the id of its tab panel
 * @property {string} label what it lists, for messages
 * @property {string} url where it is read from (paged: page, size, sort, filters)
 * @property {string} defaultSort
 * @property {string} countEl the selector of its count in the tab
 * @property {string} emptyText
 * @property {Column[]} columns
 * @property {(item: T) => HTMLTableRowElement} renderRow
 */
/**
 * A list on screen.
 * @template T
 * @typedef {Omit<ListConfig<T>, "panel"> & {
 *   panel: HTMLElement,
 *   page: number,
 *   size: number,
 *   sort: string,
 *   filters: string[],
 *   items: T[],
 *   total: number,
 *   capped: boolean,
 *   loaded: boolean,
 *   loading: boolean,
 *   again: boolean,
 *   generation: number,
 *   stale: boolean,
 *   queryError: ApiError | null,
 *   reset: () => void,
 *   load: () => Promise<void>,
 * }} List
 */

/**
 * One list view (tasks or workpieces): filter chips, sortable column heads, paging with the total, and loading
 * that never shows a stale user's answer.
 * @template T
 * @param {ListConfig<T>} config
 * @returns {List<T>}
 */
export function createList(config) {
  const panel = $(`#${config.panel}`);
  const sizeSelect = $(".size", panel, HTMLSelectElement);
  /** @type {List<T>} */
  const list = {
    ...config,
    panel,
    page: 0,
    size: Number(sizeSelect.value),
    sort: config.defaultSort,
    filters: [],
    items: [],
    total: 0,
    capped: false,
    loaded: false,
    loading: false,
    again: false,
    generation: 0,
    stale: false,
    queryError: null,
    reset,
    load,
  };

  const form = $(".filter-form", panel);
  const input = $("input[name=filter]", form, HTMLInputElement);
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
    if (hasNext(list)) {
      list.page++;
      void list.load();
    }
  });
  sizeSelect.addEventListener("change", () => {
    list.size = Number(sizeSelect.value);
    list.page = 0;
    void list.load();
  });

  function reset() {
    list.generation++;
    list.page = 0;
    list.items = [];
    list.total = 0;
    list.capped = false;
    list.loaded = false;
    $("tbody", panel).replaceChildren();
    $(".range", panel).textContent = "";
    $(".query-error", panel).hidden = true;
  }

  async function load() {
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
      /** @type {T[]} */
      const items = await json(response);
      if (generation !== list.generation) return;
      list.total = Number(response.headers.get("X-ElementCount") ?? items.length);
      // Beyond VIEW_COUNT_CAP the server stops counting: the total is "at least", and paging goes on while pages are full.
      list.capped = response.headers.get("X-ElementCount-Capped") === "true";
      // A page beyond the end (the last task of the page went away): show the last page instead.
      if (items.length === 0 && list.page > 0 && list.total > 0 && !list.capped) {
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
      if (err instanceof ApiError && err.status === 400) {
        // A filter or sort the server refused: say which, keep the filters so the person can fix them.
        list.queryError = err;
        list.items = [];
        list.total = 0;
        const box = $(".query-error", panel);
        box.replaceChildren(
          h("span", {}, "The list cannot be shown: "),
          ...describeError(err),
          h("p", { class: "hint" }, "Remove or change the filter marked below."),
        );
        box.hidden = false;
        renderChips(list);
        renderList(list);
      } else {
        showError(`Loading ${config.label} failed`, problemOf(err));
      }
    } finally {
      list.loading = false;
      panel.setAttribute("aria-busy", "false");
      if (list.again) {
        list.again = false;
        void list.load();
      }
    }
  }

  renderHead(list);
  return list;
}

/**
 * @template T
 * @param {List<T>} list
 */
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

/**
 * @template T
 * @param {List<T>} list
 */
export function renderChips(list) {
  const chips = $(".chips", list.panel);
  // The server names a refused filter by its position in the list it was sent (it never echoes the text back).
  /** @type {{ field?: string, index?: number }[]} */
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

/**
 * @template T
 * @param {List<T>} list
 */
function renderList(list) {
  const tbody = $("tbody", list.panel);
  const rows = list.items.map((item) => list.renderRow(item));
  if (rows.length === 0) {
    const text = list.queryError
      ? "Nothing to show until the filter is fixed."
      : list.filters.length
        ? "Nothing matches these filters."
        : list.emptyText;
    rows.push(h("tr", { class: "empty" }, h("td", { colspan: list.columns.length }, text)));
  }
  tbody.replaceChildren(...rows);
  const from = list.total === 0 ? 0 : list.page * list.size + 1;
  const to = list.capped
    ? list.page * list.size + list.items.length
    : Math.min(list.total, list.page * list.size + list.items.length);
  const total = list.capped ? `${Math.max(list.total, to).toLocaleString("en-US")}+` : String(list.total);
  // An empty page after full ones can only be a capped list's end (an exact one goes back to its last page).
  $(".range", list.panel).textContent =
    list.total === 0
      ? "0 items"
      : list.items.length === 0
        ? `no more after ${(list.page * list.size).toLocaleString("en-US")}`
        : `${from}–${to} of ${total}`;
  $(".prev", list.panel, HTMLButtonElement).disabled = list.page === 0;
  $(".next", list.panel, HTMLButtonElement).disabled = !hasNext(list);
  if (list.countEl) $(list.countEl).textContent = list.queryError ? "" : `(${total})`;
}

/**
 * Whether a next page may hold anything: below the total, or — when the total is capped ("2,000+") — while the
 * pages come back full.
 * @param {{ page: number, size: number, total: number, capped: boolean, items: unknown[] }} list
 */
function hasNext(list) {
  return list.capped ? list.items.length === list.size : (list.page + 1) * list.size < list.total;
}
