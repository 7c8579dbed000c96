// The task list's modal dialogs (defer, complete, start): opening them, and reading the JSON object they ask for.
// @ts-check

import { $ } from "../page.js";

/**
 * Opens a dialog; `submit` returns an error text to keep it open, or nothing to close it.
 * @param {"defer-dialog" | "complete-dialog" | "start-dialog"} id
 * @param {string} subject
 * @param {(dialog: HTMLDialogElement) => void} prepare
 * @param {(dialog: HTMLDialogElement) => string | null | Promise<string | null>} submit
 */
export function openDialog(id, subject, prepare, submit) {
  const dialog = $(`#${id}`, document, HTMLDialogElement);
  const form = $("form", dialog, HTMLFormElement);
  const error = $(".dialog-error", dialog);
  $(".dialog-subject", dialog).textContent = subject;
  error.hidden = true;
  prepare(dialog);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const problem = await submit(dialog);
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    dialog.close();
  };
  $(".cancel", dialog).onclick = () => dialog.close();
  dialog.showModal();
}

/**
 * The JSON object `text` holds (empty: {}), or an error text naming `what`.
 * @param {string} text
 * @param {string} what
 * @returns {{ value: Record<string, unknown>, error?: undefined } | { value?: undefined, error: string }}
 */
export function parseObject(text, what) {
  if (!text.trim()) return { value: {} };
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value))
      return { error: `${what} must be a JSON object, like {"approved": true}.` };
    return { value };
  } catch (err) {
    return { error: `${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}
