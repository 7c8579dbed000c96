// The REST task list's answers (Polyflow's example task-list API), apart from the gateway's wiring: lists kept per
// view version (gateway/answer-cache.ts), process starts, and a user's interactions with a task — with ?wait=true,
// answered once the view shows the effect. A task or data entry the caller may not see answers exactly as one that
// does not exist (404).
import { randomUUID } from "node:crypto";
import { notFound } from "../lib/errors.ts";
import type { User } from "../domain/types.ts";
import type { ActionCall, ActionParams, ActionResult } from "../lib/actions.ts";
import type { AnswerCache } from "./answer-cache.ts";
import type { JsonObject } from "../lib/json.ts";
import { dataEntryDto, processDto, taskDto, viewSort, type FormUrls } from "./tasklist-dto.ts";

type Row = Record<string, unknown>;

/**
 * A view document as the DTOs read it (gateway/tasklist-dto.ts): a JSON object whose fields they look up by name —
 * which is what it is on arrival (it came over the transporter). The one widening of the view's typed answers.
 */
const row = <T extends object>(document: T): Row => document as Row;

/** An answer with what the gateway sets on the response. */
export interface Answer<B> {
  body: B;
  status?: number;
  headers?: Record<string, string>;
  /** The body is already serialised (bytes: moleculer-web sends them with their Content-Length, in one write, where
   * a string went out chunked and encoded to UTF-8 on every send), of this content type. */
  type?: string;
}

// ---- lists ----

/** The query of a list route (validated by its params, gateway/platform-routes.ts). */
export interface ListQuery {
  page: number;
  size: number;
  sort?: string | string[];
  filters?: string | string[];
  assignedToMeOnly?: boolean;
  involvementsOnly?: boolean;
}

const arrayOf = (value: string | string[] | undefined) => (value === undefined ? undefined : Array.isArray(value) ? value : [value]);

/** The view query of GET /api/tasks. */
export function taskQuery(user: User, q: ListQuery): ActionParams<"view.tasksWithDataEntriesForUser"> {
  return {
    user,
    page: q.page,
    size: q.size,
    sort: viewSort(arrayOf(q.sort), "task"),
    filters: arrayOf(q.filters),
    assignedToMeOnly: q.assignedToMeOnly ?? false,
    involvementsOnly: q.involvementsOnly ?? false,
  };
}

/** The view query of GET /api/business-data-entries. */
export function dataEntryQuery(user: User, q: ListQuery): ActionParams<"view.dataEntriesForUser"> {
  return { user, page: q.page, size: q.size, sort: viewSort(arrayOf(q.sort), "dataEntry"), filters: arrayOf(q.filters), involvementsOnly: q.involvementsOnly ?? false };
}

/** The paged view queries the REST lists answer from. */
export type ListAction = "view.tasksWithDataEntriesForUser" | "view.dataEntriesForUser";
/** An element of a list query's page. */
type ElementOf<A extends ListAction> = Extract<ActionResult<A>, { elements: unknown[] }>["elements"][number];

export const renderTasks = (urls: FormUrls) => (elements: ElementOf<"view.tasksWithDataEntriesForUser">[]) =>
  elements.map((e) => ({ task: taskDto(row(e.task), urls), dataEntries: e.dataEntries.map((d) => dataEntryDto(row(d), urls)) }));

export const renderDataEntries = (urls: FormUrls) => (elements: ElementOf<"view.dataEntriesForUser">[]) => elements.map((d) => dataEntryDto(row(d), urls));

/** The content type of a serialised list body. */
const JSON_TYPE = "application/json; charset=utf-8";

/**
 * A list answer (a page of a view query and its total): kept per question (the view action and its parameters,
 * the caller included) with the view version it was computed from, and sent again as it was while the view has
 * not moved on — the view only confirms the version (gateway/answer-cache.ts). The body is serialised once, to the
 * bytes that are sent (a kept answer is sent again without encoding it again).
 */
export async function listAnswer<A extends ListAction>(call: ActionCall, answers: AnswerCache, action: A, params: ActionParams<A>, render: (elements: ElementOf<A>[]) => unknown[]): Promise<Answer<Buffer>> {
  const serialised = (elements: ElementOf<A>[]) => Buffer.from(JSON.stringify(render(elements)));
  if (!answers.enabled) {
    const result = await call(action, params);
    // Asked without a knownVersion, the view never answers "unchanged".
    if ("unchanged" in result) throw new Error(`${action} answered "unchanged" to a version it was not given`);
    return { body: serialised(result.elements), headers: countHeaders(result.totalElementCount, result.totalElementCountCapped === true), type: JSON_TYPE };
  }
  const key = JSON.stringify([action, params]);
  const kept = answers.get(key);
  const result = await call(action, { ...params, knownVersion: kept?.version ?? "" });
  let answer = kept;
  if (!("unchanged" in result) || !answer) {
    if ("unchanged" in result) throw new Error(`${action} answered "unchanged" to a version it was not given`);
    // Asked with a knownVersion, the view always answers with its version.
    answer = { version: result.version ?? "", total: result.totalElementCount, capped: result.totalElementCountCapped === true, body: serialised(result.elements) };
    answers.set(key, answer);
  }
  return { body: answer.body, headers: countHeaders(answer.total, answer.capped), type: JSON_TYPE };
}

/**
 * A list's total: X-ElementCount, Polyflow's header; above VIEW_COUNT_CAP the view stops counting, and the header
 * gives the cap with X-ElementCount-Capped: true ("at least that many": a task list shows "2,000+").
 */
export function countHeaders(total: number, capped: boolean): Record<string, string> {
  return capped ? { "X-ElementCount": String(total), "X-ElementCount-Capped": "true" } : { "X-ElementCount": String(total) };
}

// ---- one task, one data entry ----

/** GET /api/task/:id: the task with its data entries. */
export async function taskWithDataEntries(call: ActionCall, user: User, id: string, urls: FormUrls) {
  const found = await call("view.taskWithDataEntriesForId", { id, user });
  if (!found) throw notFound(`Task ${id} not found`);
  return renderTasks(urls)([found])[0]!;
}

/** GET /api/business-data-entries/:entryType/:entryId. */
export async function dataEntry(call: ActionCall, user: User, identity: { entryType: string; entryId: string }, urls: FormUrls) {
  const entry = await call("view.dataEntryForIdentity", { ...identity, user });
  if (!entry) throw notFound(`Data entry ${identity.entryType}/${identity.entryId} not found`);
  return dataEntryDto(row(entry), urls);
}

// ---- processes ----

/** GET /api/processes: what the user may start. Every list carries its total (Polyflow's contract declares it here too); this one is never paged. */
export async function processes(call: ActionCall, user: User, urls: FormUrls): Promise<Answer<unknown[]>> {
  const defs = await call("view.processDefinitionsStartableByUser", { user });
  return { body: defs.map((d) => processDto({ ...row(d), applicationName: d.applicationName, processDefinitionKey: d.processDefinitionKey }, urls)), headers: { "X-ElementCount": String(defs.length) } };
}

/** POST /api/processes/:applicationName/:processDefinitionKey/start: the owning application's engine starts it. */
export async function startProcess(call: ActionCall, user: User, which: { applicationName: string; processDefinitionKey: string }, body: { businessKey?: string; variables?: JsonObject } | undefined) {
  const defs = await call("view.processDefinitionsStartableByUser", { user });
  const definition = defs.find((d) => d.applicationName === which.applicationName && d.processDefinitionKey === which.processDefinitionKey);
  if (!definition) throw notFound(`No startable process ${which.processDefinitionKey} in ${which.applicationName}`);
  const requestId = randomUUID();
  const result = await call("processDefinition.requestStart", {
    processDefinitionId: definition.processDefinitionId,
    businessKey: body?.businessKey,
    variables: body?.variables ?? {},
    requestedBy: user.username,
    requestId,
    commandId: `start:${requestId}`,
  });
  return {
    requestId,
    processDefinitionId: definition.processDefinitionId,
    globalPosition: result.globalPosition,
    // Where to ask what became of it (a refusal also arrives on the event stream as process-start-refused).
    status: `/api/process-starts/${encodeURIComponent(definition.processDefinitionId)}/${encodeURIComponent(requestId)}`,
  };
}

/** GET /api/process-starts/…: the caller's own start request; someone else's answers like an unknown one. */
export async function processStart(call: ActionCall, user: User, processDefinitionId: string, requestId: string) {
  const record = await call("processDefinition.startRequest", { processDefinitionId, requestId });
  if (!record || record.requestedBy !== user.username) throw notFound(`No start request ${requestId} of yours for ${processDefinitionId}`);
  const { requestId: _same, ...rest } = record;
  return { requestId, ...rest };
}

// ---- task interactions ----

type InteractionAction = "task.claim" | "task.unclaim" | "task.defer" | "task.undefer" | "task.requestCompletion";

/** A user's intent on a task: the command behind it (its params but the task's id) and how the view shows that it took effect. */
export type Interaction = {
  [A in InteractionAction]: { action: A; params: Omit<ActionParams<A>, "id" | "commandId">; effectShown: (task: ActionResult<"view.taskForId">) => boolean };
}[InteractionAction];

export type InteractionName = "claim" | "unclaim" | "defer" | "undefer" | "complete";

export const INTERACTION_SUMMARIES: Record<InteractionName, string> = {
  claim: "Claim the task",
  unclaim: "Give the task back",
  defer: "Defer to a follow-up date",
  undefer: "Clear the follow-up date",
  complete: "Complete with a payload",
};

/** The interaction `name` of `user` with the request's body (defer: the follow-up date; complete: the payload). */
export function interaction(name: InteractionName, user: User, body: unknown): Interaction {
  const { username } = user;
  switch (name) {
    case "claim":
      return { action: "task.claim", params: { assignee: username }, effectShown: (task) => task?.assignee === username };
    case "unclaim":
      return { action: "task.unclaim", params: { username }, effectShown: (task) => task !== null && task.assignee === null };
    case "defer":
      // The api action's params (ACTION_PARAMS.defer) checked that the body is an ISO-8601 date-time string.
      return { action: "task.defer", params: { followUpDate: body as string, username }, effectShown: (task) => task?.followUpDate === body };
    case "undefer":
      return { action: "task.undefer", params: { username }, effectShown: (task) => task !== null && task.followUpDate === null };
    case "complete":
      // The api action's params (ACTION_PARAMS.complete) checked that the body, when given, is an object (JSON).
      return { action: "task.requestCompletion", params: { payload: (body ?? {}) as JsonObject, assignee: username }, effectShown: (task) => task === null };
  }
}

/**
 * Performs an interaction, only on a task the user may see (else 404, as if it did not exist). With `wait` the
 * answer waits (at most `waitTimeoutMs`) until the view shows the effect — which for interactions arrives once the
 * owning engine has performed them — and says 202 when it did not within the bound.
 */
export async function interact(call: ActionCall, user: User, id: string, what: Interaction, wait: { wait: boolean; timeoutMs: number; pollMs?: number }): Promise<Answer<null | { status: string; message: string }>> {
  const visible = await call("view.taskForId", { id, user });
  if (!visible) throw notFound(`Task ${id} not found`);
  // One commandId per HTTP request: the broker retries a call whose node died (REQUEST_REJECTED) on another
  // node with the same params, and the event store applies the command once.
  const result = await call(what.action, { id, ...what.params, commandId: `api:${randomUUID()}` });
  if (!wait.wait) return { status: 204, body: null };
  const deadline = Date.now() + wait.timeoutMs;
  let minPosition = result.globalPosition;
  for (;;) {
    const task = await call("view.taskForId", { id, minPosition, maxWaitMs: Math.max(0, deadline - Date.now()) });
    if (what.effectShown(task)) return { status: 204, body: null };
    if (Date.now() >= deadline) break;
    minPosition = 0;
    await new Promise((r) => setTimeout(r, wait.pollMs ?? 50));
  }
  return { status: 202, body: { status: "ACCEPTED", message: "The request is accepted; its effect is not visible yet" } };
}
