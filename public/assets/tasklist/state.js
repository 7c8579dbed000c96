// The task list's state: who is signed in, what is on screen, what is pending; and its timings.
// @ts-check

/** @import { ProcessDefinition, Profile, User } from "./api.js" */

export const USER_KEY = "taskpool.user";
export const POLL_MS = 15_000;
export const STREAM_RETRY_MS = 30_000;
export const NEW_HIGHLIGHT_MS = 15_000;
export const REFRESH_DEBOUNCE_MS = 250;

export const state = {
  /**
   * The id of the user the page acts for.
   * @type {string | null}
   */
  user: null,
  /** @type {Profile | null} */
  profile: null,
  /**
   * The development login's users.
   * @type {User[]}
   */
  users: [],
  /**
   * The processes the user may start.
   * @type {ProcessDefinition[]}
   */
  processes: [],
  /** @type {"tasks" | "workpieces"} */
  tab: "tasks",
  /** @type {EventSource | null} */
  source: null,
  /** @type {ReturnType<typeof setInterval> | undefined} */
  pollTimer: undefined,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  retryTimer: undefined,
  /**
   * id → time until which the row is highlighted as new.
   * @type {Map<string, number>}
   */
  newTasks: new Map(),
  /**
   * requestId → process name of the starts asked for on this page, to name them if the engine refuses.
   * @type {Map<string, string>}
   */
  startRequests: new Map(),
  /**
   * "<application>/<processKey>" a link asked to start, once the user is signed in.
   * @type {string | null}
   */
  pendingStart: null,
  /**
   * Ids of the tasks the stream said changed, highlighted once when next shown.
   * @type {Set<string>}
   */
  changedTasks: new Set(),
};

/** The username of the signed-in user (the id until the profile is known). */
export function me() {
  return state.profile?.username ?? state.user;
}

/**
 * A form URL with the user handed over: every %userId% becomes the current user's id.
 * @template {string | null | undefined} U
 * @param {U} url
 * @returns {U}
 */
export function handOver(url) {
  return /** @type {U} */ (url ? url.replaceAll("%userId%", encodeURIComponent(state.user ?? "")) : url);
}
