// The task list's REST calls (/api, docs: /swagger-ui/) and the DTOs they answer (gateway/tasklist-dto.ts).
// @ts-check

import { currentToken, withCredentials } from "../page.js";
import { state } from "./state.js";

/** @typedef {{ interaction: string, reason: string, username: string | null, time?: string }} Refusal */
/**
 * A task (GET /api/tasks).
 * @typedef {object} Task
 * @property {string} id
 * @property {string | null} [name]
 * @property {string | null} [description]
 * @property {string | null} [url] its form, with %userId% for the client to fill in
 * @property {string | null} [formKey]
 * @property {string[] | null} [candidateGroups]
 * @property {string[] | null} [candidateUsers]
 * @property {string | null} [assignee]
 * @property {string | null} [processName]
 * @property {string | null} [createTime]
 * @property {string | null} [dueDate]
 * @property {string | null} [followUpDate]
 * @property {string | null} [businessKey]
 * @property {number | null} [priority]
 * @property {Record<string, unknown> | null} [payload]
 * @property {string | null} [applicationName]
 * @property {string | null} [taskDefinitionKey]
 * @property {Refusal | null} [lastRefusal] the engine's last refusal of an interaction
 */
/** @typedef {{ task: Task, dataEntries?: DataEntry[] }} TaskWithDataEntries an item of GET /api/tasks */
/**
 * @typedef {object} ProtocolEntry
 * @property {string | null} [timestamp]
 * @property {string | null} [state]
 * @property {string | null} [stateType]
 * @property {string | null} [user]
 * @property {string | null} [log]
 * @property {string | null} [logDetails]
 */
/**
 * A business data entry, a workpiece (GET /api/business-data-entries).
 * @typedef {object} DataEntry
 * @property {string} entryType
 * @property {string} entryId
 * @property {Record<string, unknown> | null} [payload]
 * @property {string | null} [name]
 * @property {string | null} [description]
 * @property {string | null} [type]
 * @property {string | null} [url]
 * @property {string | null} [applicationName]
 * @property {string | null} [currentState]
 * @property {string | null} [currentStateType]
 * @property {ProtocolEntry[]} [protocol]
 * @property {string | null} [lastModifiedDate]
 */
/**
 * A process the user may start (GET /api/processes).
 * @typedef {object} ProcessDefinition
 * @property {string} definitionId
 * @property {string} definitionKey
 * @property {string | null} [definitionVersion]
 * @property {string} applicationName
 * @property {string | null} [processName]
 * @property {string | null} [description]
 * @property {string | null} [url] its start form, or the link to its start dialog here
 * @property {boolean} startsThroughForm true: open `url`, a direct start is refused
 */
/** @typedef {{ id: string, username: string, displayName?: string }} User GET /api/users */
/** @typedef {{ username: string, groups?: string[], displayName?: string }} Profile GET /api/profile */
/** @typedef {{ requestId?: string }} StartResult POST /api/processes/:application/:key/start */
/** @typedef {{ type?: string | null, message?: string, data?: unknown, status?: number }} Problem an error answer */

/** Called when the gateway refuses the tab's token (401): the page asks to sign in again. */
let onSignInEnded = (/** @type {string} */ _reason) => {};

/** @param {(reason: string) => void} handler */
export function whenSignInEnds(handler) {
  onSignInEnded = handler;
}

/** An error answer of the API, or the gateway out of reach (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {Problem | null} body
   */
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.type = body?.type ?? null;
    this.data = body?.data;
  }
}

/**
 * What was thrown, as a Problem to show: an ApiError or another Error as it is, anything else as its text.
 * @param {unknown} err
 * @returns {Problem}
 */
export function problemOf(err) {
  return err instanceof Error ? err : { message: String(err) };
}

/**
 * Calls the API as the signed-in user (or `user`; null: nobody); throws an ApiError for an error answer.
 * @param {string} path
 * @param {{ method?: "GET" | "POST", body?: unknown, user?: string | null }} [options]
 */
export async function api(path, { method = "GET", body, user = state.user } = {}) {
  // Signed in with a token, the token says who asks; otherwise the development header names the chosen user.
  const headers = withCredentials({ Accept: "application/json" });
  if (user && !currentToken()) headers["X-Current-User-ID"] = user;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { type: "NETWORK_ERROR", message: "The Taskpool gateway cannot be reached" });
  }
  if (!response.ok) {
    const payload = await response
      .json()
      .catch(() => ({ type: `HTTP_${response.status}`, message: response.statusText || `HTTP ${response.status}` }));
    if (response.status === 401 && currentToken())
      onSignInEnded(`Your sign-in ended: ${payload.message ?? "the token is no longer valid"}.`);
    throw new ApiError(response.status, payload);
  }
  return response;
}

/**
 * The JSON body of an answer, typed as the caller expects it (an empty body is null: T includes null where one can be).
 * @template T
 * @param {Response} response
 * @returns {Promise<T>}
 */
export async function json(response) {
  const text = await response.text();
  return /** @type {T} */ (text ? JSON.parse(text) : null);
}
