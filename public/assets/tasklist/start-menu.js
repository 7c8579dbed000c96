// The start menu: the processes the user may start, by their start form, or directly in the start dialog.
// @ts-check

import { $, h } from "../page.js";
import { api, json, problemOf } from "./api.js";
import { openDialog, parseObject } from "./dialogs.js";
import { notice, showError } from "./messages.js";
import { handOver, state } from "./state.js";

/** @import { ProcessDefinition, StartResult } from "./api.js" */

const startButton = $("#start-button", document, HTMLButtonElement);
const startMenu = $("#start-menu");

/** @returns {HTMLElement[]} */
function menuItems() {
  return [...startMenu.querySelectorAll("[role=menuitem]:not([aria-disabled=true])")].filter(
    (item) => item instanceof HTMLElement,
  );
}

/** Empties the menu until the processes of the next user are loaded. */
export function clearStartMenu() {
  startMenu.replaceChildren();
  startButton.disabled = true;
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
  const i = document.activeElement instanceof HTMLElement ? items.indexOf(document.activeElement) : -1;
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
  if (
    !startMenu.hidden &&
    !(event.target instanceof Node && startMenu.contains(event.target)) &&
    event.target !== startButton
  )
    closeMenu();
});

/** Fills the menu with the processes the signed-in user may start. */
export async function loadProcesses() {
  const user = state.user;
  /** @type {ProcessDefinition[]} */
  let processes = [];
  try {
    processes = await json(await api("/api/processes"));
  } catch (err) {
    showError("Loading the processes you may start failed", problemOf(err));
  }
  if (user !== state.user) return;
  state.processes = processes;
  startButton.disabled = false;
  /**
   * @param {ProcessDefinition} p
   * @param {string | null} how
   */
  const label = (p, how) => [
    h("span", {}, p.processName ?? p.definitionKey),
    h(
      "span",
      { class: "muted small" },
      ` ${p.applicationName}${p.definitionVersion ? ` · version ${p.definitionVersion}` : ""}${how ? ` · ${how}` : ""}`,
    ),
  ];
  /** @param {ProcessDefinition} p */
  const item = (p) => {
    const dataset = {
      process: `${p.applicationName}/${p.definitionKey}`,
      start: p.startsThroughForm ? "form" : "direct",
    };
    if (p.startsThroughForm && p.url) {
      // Its start form collects what the process needs and starts it: open the form, as Polyflow's list does.
      return h(
        "a",
        {
          role: "menuitem",
          tabindex: "-1",
          href: handOver(p.url),
          target: "_blank",
          rel: "noopener",
          dataset,
          onclick: () => closeMenu(),
        },
        ...label(p, "opens its start form"),
      );
    }
    if (p.startsThroughForm) {
      // Needs its form, but no form address is configured (FORM_URLS): say so instead of failing later.
      return h(
        "span",
        {
          role: "menuitem",
          "aria-disabled": "true",
          class: "muted",
          tabindex: "-1",
          dataset,
          title: "This process starts through its start form, and no address of that form is configured (FORM_URLS).",
        },
        ...label(p, "start form not available here"),
      );
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
    : [
        h(
          "li",
          { role: "none" },
          h("span", { role: "menuitem", "aria-disabled": "true", class: "muted" }, "No processes you may start"),
        ),
      ];
  startMenu.replaceChildren(...items);
}

/**
 * The start dialog of a process that starts directly.
 * @param {ProcessDefinition} definition
 */
export function openStart(definition) {
  const name = definition.processName ?? definition.definitionKey;
  openDialog(
    "start-dialog",
    `“${name}” of ${definition.applicationName}${definition.description ? ` — ${definition.description}` : ""}`,
    (dialog) => {
      $("#start-business-key", dialog, HTMLInputElement).value = "";
      $("#start-variables", dialog, HTMLTextAreaElement).value = "{}";
      const link = $(".start-form-link", dialog);
      link.replaceChildren(
        ...(definition.url
          ? [
              "This process also has its own start form: ",
              h("a", { href: handOver(definition.url), target: "_blank", rel: "noopener" }, "open it"),
            ]
          : []),
      );
      link.hidden = !definition.url;
      $("#start-business-key", dialog).focus();
    },
    async (dialog) => {
      const { value: variables, error } = parseObject(
        $("#start-variables", dialog, HTMLTextAreaElement).value,
        "The variables",
      );
      if (error) return error;
      const businessKey = $("#start-business-key", dialog, HTMLInputElement).value.trim();
      try {
        const response = await api(
          `/api/processes/${encodeURIComponent(definition.applicationName)}/${encodeURIComponent(definition.definitionKey)}/start`,
          {
            method: "POST",
            body: { ...(businessKey ? { businessKey } : {}), variables },
          },
        );
        /** @type {StartResult | null} */
        const result = await json(response);
        if (result?.requestId) state.startRequests.set(result.requestId, name);
        notice(
          `Start of “${name}” requested${result?.requestId ? ` (request ${result.requestId})` : ""}. Its first tasks appear here once the engine has started it.`,
          {
            status: String(response.status),
            action: "start",
          },
        );
        return null;
      } catch (err) {
        const problem = problemOf(err);
        return `Starting failed: ${problem.message}${problem.type ? ` (${problem.type})` : ""}`;
      }
    },
  );
}
