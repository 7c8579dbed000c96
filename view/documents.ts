// The documents of the view (mongo-view) and how events change them. Pure: the view service loads the documents
// an event batch touches, runs these functions, and writes the results back through a view store (MongoDB or
// the embedded one).
//
// Each document is the aggregate's own folded state (the deciders' `evolve`, so command side and view can never
// disagree) plus what queries need: one `authorizedPrincipals` array (`user:<name>` / `group:<name>`, the only
// array in the compound indexes), `correlationIds` ("entryType#entryId") to join tasks with data entries, the
// stream `version` and global `position` of the last event applied — an event at or below `version` is skipped,
// which makes every redelivery and replay harmless — and a `deleted` tombstone instead of removal, so that a
// redelivered older event cannot bring a deleted document back.
import { taskDecider, type TaskEvent, type TaskSnapshot, type TaskState } from "../domain/task.ts";
import { dataEntryDecider, dataEntryId, type DataEntry, type DataEntryEvent, type DataEntryState, type ProtocolEntry } from "../domain/data-entry.ts";
import { processDefinitionDecider, type ProcessDefinition, type ProcessDefinitionEvent } from "../domain/process-definition.ts";
import { processInstanceDecider, type ProcessInstance, type ProcessInstanceEvent, type ProcessInstanceStatus } from "../domain/process-instance.ts";
import type { ProcessVariableValue, ProcessVariablesEvent } from "../domain/process-variables.ts";
import type { Correlations, JsonValue, Payload, SourceReference, User } from "../domain/types.ts";

export const collections = ["tasks", "dataEntries", "processDefinitions", "processInstances", "processVariables"] as const;
export type CollectionName = (typeof collections)[number];

/** What the view needs of a recorded event. */
export interface ViewEvent {
  type: string;
  data: unknown;
  streamId: string;
  streamVersion: number;
  globalPosition: number;
  recordedAt: string;
}

interface Tracked {
  _id: string;
  deleted: boolean;
  /** Stream version of the last event applied. */
  version: number;
  /** Global position of the last event applied. */
  position: number;
  authorizedPrincipals: string[];
}

export interface Correlation {
  entryType: string;
  entryId: string;
}

export interface InteractionRefusal {
  interaction: string;
  reason: string;
  username: string | null;
  time: string;
}

export interface TaskDocument extends Tracked, Omit<TaskSnapshot, "correlations" | "payload"> {
  payload: Payload;
  correlations: Correlation[];
  correlationIds: string[];
  processName: string;
  applicationName: string;
  lastRefusal: InteractionRefusal | null;
}

export interface DataEntryDocument extends Tracked, Omit<DataEntry, "correlations" | "payload"> {
  payload: Payload;
  correlations: Correlation[];
  correlationIds: string[];
  /** Users named in the protocol ("involved"). */
  involvedUsers: string[];
  createdDate: string;
  lastModifiedDate: string;
}

export interface ProcessDefinitionDocument extends Tracked, ProcessDefinition {}

export interface ProcessInstanceDocument extends Tracked, ProcessInstance {
  state: ProcessInstanceStatus;
  applicationName: string;
}

export interface ProcessVariableDocument extends Tracked {
  variableInstanceId: string;
  variableName: string;
  processInstanceId: string;
  revision: number;
  scopeActivityInstanceId: string;
  value: ProcessVariableValue;
  sourceReference: SourceReference;
}

// ---- principals ------------------------------------------------------------------------------------------------

export function userPrincipal(username: string): string {
  return `user:${username}`;
}

export function groupPrincipal(group: string): string {
  return `group:${group}`;
}

/** Everything a user may be authorized as. */
export function principalsOf(user: User): string[] {
  return [userPrincipal(user.username), ...user.groups.map(groupPrincipal)];
}

function principals(users: (string | null | undefined)[], groups: string[]): string[] {
  const set = new Set<string>();
  for (const u of users) if (u) set.add(userPrincipal(u));
  for (const g of groups) set.add(groupPrincipal(g));
  return [...set].sort();
}

// ---- keys ------------------------------------------------------------------------------------------------------
// MongoDB refuses "." inside keys and a leading "$"; payloads are user data, so such keys are stored with
// look-alike characters and turned back on the way out. Both stores do the same, so answers stay identical.

const DOT = "\uFF0E";
const DOLLAR = "\uFF04";

export function encodeKeys(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(encodeKeys);
  if (value && typeof value === "object") {
    const out: Record<string, JsonValue> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key.replaceAll(".", DOT).replace(/^\$/, DOLLAR)] = encodeKeys(item);
    }
    return out;
  }
  return value;
}

const ENCODED_DOLLAR = new RegExp(`^${DOLLAR}`);

/** A stored key back to the payload's own (most keys hold neither marker: they come back as they are). */
function decodeKey(key: string): string {
  return key.includes(DOT) || key.startsWith(DOLLAR) ? key.replaceAll(DOT, ".").replace(ENCODED_DOLLAR, "$") : key;
}

/** Whether any key of a stored value holds a marker (most payloads have none: they are returned as they are). */
function hasEncodedKey(value: JsonValue): boolean {
  if (Array.isArray(value)) return value.some(hasEncodedKey);
  if (value && typeof value === "object") {
    for (const key in value) if (key.includes(DOT) || key.startsWith(DOLLAR) || hasEncodedKey(value[key]!)) return true;
  }
  return false;
}

/** A stored value with its keys back as the payload had them: the value itself when no key was encoded. */
export function decodeKeys(value: JsonValue): JsonValue {
  return hasEncodedKey(value) ? decodedCopy(value) : value;
}

function decodedCopy(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(decodedCopy);
  if (value && typeof value === "object") {
    const out: Record<string, JsonValue> = {};
    for (const key in value) out[decodeKey(key)] = decodedCopy(value[key]!);
    return out;
  }
  return value;
}

/** The stored name of one payload path segment. */
export function encodeKey(segment: string): string {
  return segment.replaceAll(".", DOT).replace(/^\$/, DOLLAR);
}

function correlationList(correlations: Correlations): Correlation[] {
  return Object.entries(correlations)
    .map(([entryType, entryId]) => ({ entryType, entryId }))
    .sort((a, b) => (a.entryType < b.entryType ? -1 : a.entryType > b.entryType ? 1 : 0));
}

export function correlationMap(list: Correlation[]): Correlations {
  return Object.fromEntries(list.map((c) => [c.entryType, c.entryId]));
}

function tombstone(id: string, version: number, position: number): Tracked {
  return { _id: id, deleted: true, version, position, authorizedPrincipals: [] };
}

// ---- tasks -----------------------------------------------------------------------------------------------------

function taskState(doc: TaskDocument | null): TaskState {
  if (!doc) return taskDecider.initialState;
  if (doc.deleted) return { status: "deleted", task: null };
  const { _id, deleted: _d, version: _v, position: _p, authorizedPrincipals: _a, correlationIds: _c, processName: _pn, applicationName: _an, lastRefusal: _r, ...rest } = doc;
  return { status: "active", task: { ...rest, payload: decodeKeys(rest.payload) as Payload, correlations: correlationMap(rest.correlations) } };
}

function taskDocument(task: TaskSnapshot, version: number, position: number, lastRefusal: InteractionRefusal | null): TaskDocument {
  const correlations = correlationList(task.correlations);
  return {
    ...task,
    _id: task.id,
    deleted: false,
    version,
    position,
    payload: encodeKeys(task.payload) as Payload,
    correlations,
    correlationIds: correlations.map((c) => dataEntryId(c.entryType, c.entryId)),
    processName: task.sourceReference.name,
    applicationName: task.sourceReference.applicationName,
    authorizedPrincipals: principals([task.assignee, ...task.candidateUsers], task.candidateGroups),
    lastRefusal,
  };
}

/** The task document after `event`; the same document when the event was applied before. */
export function projectTask(doc: TaskDocument | null, event: ViewEvent): TaskDocument | Tracked | null {
  if (doc && event.streamVersion <= doc.version) return doc;
  const before = taskState(doc);
  const after = taskDecider.evolve(before, { type: event.type, data: event.data } as TaskEvent);
  const data = event.data as { id: string; interaction: string; reason: string; username?: string | null };
  if (after.status === "completed" || after.status === "deleted") return tombstone(data.id, event.streamVersion, event.globalPosition);
  if (!after.task) return doc;
  const refusal =
    event.type === "TaskInteractionRefused"
      ? { interaction: data.interaction, reason: data.reason, username: data.username ?? null, time: event.recordedAt }
      : ((doc as TaskDocument | null)?.lastRefusal ?? null);
  // A sender that leaves createTime out still gets a place in "newest first": the time the pool learned of it.
  const task = after.task.createTime ? after.task : { ...after.task, createTime: (doc as TaskDocument | null)?.createTime ?? event.recordedAt };
  return taskDocument(task, event.streamVersion, event.globalPosition, refusal);
}

// ---- data entries ----------------------------------------------------------------------------------------------

// The view folds with the lax rules: it shows what the event store holds; strictness is the command side's.
const dataEntryFold = dataEntryDecider({ deletionStrategy: "lax" });

function dataEntryState(doc: DataEntryDocument | null): DataEntryState {
  if (!doc) return dataEntryFold.initialState;
  if (doc.deleted) return { status: "deleted", entry: null };
  const {
    _id,
    deleted: _d,
    version: _v,
    position: _p,
    authorizedPrincipals: _a,
    correlationIds: _c,
    involvedUsers: _i,
    createdDate: _cd,
    lastModifiedDate: _lm,
    ...rest
  } = doc;
  return { status: "active", entry: { ...rest, payload: decodeKeys(rest.payload) as Payload, correlations: correlationMap(rest.correlations) } };
}

function involved(protocol: ProtocolEntry[]): string[] {
  return [...new Set(protocol.map((p) => p.username).filter((u): u is string => !!u))].sort();
}

export function projectDataEntry(doc: DataEntryDocument | null, event: ViewEvent): DataEntryDocument | Tracked | null {
  if (doc && event.streamVersion <= doc.version) return doc;
  const after = dataEntryFold.evolve(dataEntryState(doc), { type: event.type, data: event.data } as DataEntryEvent);
  const data = event.data as { entryType: string; entryId: string; modification?: { time?: string } };
  const id = dataEntryId(data.entryType, data.entryId);
  if (after.status === "deleted" || !after.entry) return tombstone(id, event.streamVersion, event.globalPosition);
  const entry = after.entry;
  const time: string = data.modification?.time ?? event.recordedAt;
  const fresh = !doc || doc.deleted || event.type === "DataEntryCreated";
  const correlations = correlationList(entry.correlations);
  return {
    ...entry,
    _id: id,
    deleted: false,
    version: event.streamVersion,
    position: event.globalPosition,
    payload: encodeKeys(entry.payload) as Payload,
    correlations,
    correlationIds: correlations.map((c) => dataEntryId(c.entryType, c.entryId)),
    authorizedPrincipals: principals(entry.authorizedUsers, entry.authorizedGroups),
    involvedUsers: involved(entry.protocol),
    createdDate: fresh ? time : (doc as DataEntryDocument).createdDate,
    lastModifiedDate: time,
  };
}

// ---- process definitions and instances --------------------------------------------------------------------------

export function projectProcessDefinition(doc: ProcessDefinitionDocument | null, event: ViewEvent): ProcessDefinitionDocument | null {
  if (doc && event.streamVersion <= doc.version) return doc;
  // The view keeps no start requests (they change no document): the fold starts from none.
  const before = doc ? { status: "registered" as const, definition: stripTracked<ProcessDefinition>(doc), starts: [] } : processDefinitionDecider.initialState;
  const after = processDefinitionDecider.evolve(before, { type: event.type, data: event.data } as ProcessDefinitionEvent);
  if (!after.definition) return doc;
  const d = after.definition;
  return {
    ...d,
    _id: d.processDefinitionId,
    deleted: false,
    version: event.streamVersion,
    position: event.globalPosition,
    authorizedPrincipals: principals(d.candidateStarterUsers, d.candidateStarterGroups),
  };
}

export function projectProcessInstance(doc: ProcessInstanceDocument | null, event: ViewEvent): ProcessInstanceDocument | null {
  if (doc && event.streamVersion <= doc.version) return doc;
  const before = doc
    ? { status: doc.state, instance: stripTracked<ProcessInstance>(doc, ["state", "applicationName"]) }
    : processInstanceDecider.initialState;
  const after = processInstanceDecider.evolve(before, { type: event.type, data: event.data } as ProcessInstanceEvent);
  if (!after.instance || after.status === "initial") return doc;
  return {
    ...after.instance,
    _id: after.instance.processInstanceId,
    deleted: false,
    version: event.streamVersion,
    position: event.globalPosition,
    authorizedPrincipals: [],
    state: after.status,
    applicationName: after.instance.sourceReference.applicationName,
  };
}

function stripTracked<T>(doc: Tracked, extra: string[] = []): T {
  const copy: Record<string, unknown> = { ...doc };
  for (const key of ["_id", "deleted", "version", "position", "authorizedPrincipals", ...extra]) delete copy[key];
  return copy as T;
}

// ---- process variables -----------------------------------------------------------------------------------------

/** The variable documents one ProcessVariablesChanged event writes, given the current ones (by id). */
export function projectProcessVariables(docs: Map<string, ProcessVariableDocument>, event: ViewEvent): ProcessVariableDocument[] {
  const data = (event as { data: ProcessVariablesEvent["data"] }).data;
  const written: ProcessVariableDocument[] = [];
  for (const change of data.variableChanges) {
    const current = docs.get(change.variableInstanceId);
    if (current && event.streamVersion <= current.version) continue;
    const base = {
      _id: change.variableInstanceId,
      variableInstanceId: change.variableInstanceId,
      variableName: change.variableName,
      processInstanceId: data.sourceReference.instanceId,
      scopeActivityInstanceId: change.scopeActivityInstanceId,
      sourceReference: data.sourceReference,
      version: event.streamVersion,
      position: event.globalPosition,
      authorizedPrincipals: [],
    };
    const doc: ProcessVariableDocument =
      change.kind === "delete"
        ? { ...base, deleted: true, revision: current?.revision ?? 0, value: current?.value ?? { type: "PRIMITIVE", value: null } }
        : { ...base, deleted: false, revision: change.revision, value: { ...change.value, value: encodeKeys(change.value.value) } };
    docs.set(doc._id, doc);
    written.push(doc);
  }
  return written;
}

/** Which collection and document an event changes. */
export function targetOf(event: ViewEvent): { collection: CollectionName; id: string } | null {
  const d = event.data as {
    id: string;
    entryType: string;
    entryId: string;
    processDefinitionId: string;
    processInstanceId: string;
    sourceReference: { instanceId: string };
  };
  if (event.type.startsWith("Task")) return { collection: "tasks", id: d.id };
  if (event.type.startsWith("DataEntry")) return { collection: "dataEntries", id: dataEntryId(d.entryType, d.entryId) };
  if (event.type === "ProcessDefinitionRegistered") return { collection: "processDefinitions", id: d.processDefinitionId };
  if (event.type.startsWith("ProcessInstance")) return { collection: "processInstances", id: d.processInstanceId };
  if (event.type === "ProcessVariablesChanged") return { collection: "processVariables", id: d.sourceReference.instanceId };
  // ProcessStartRequested and other interaction-only events change no document.
  return null;
}

// ---- documents as the outside world sees them ----------------------------------------------------------------

export function taskOf(doc: TaskDocument): TaskSnapshot & { processName: string; applicationName: string; lastRefusal: InteractionRefusal | null } {
  const { _id, deleted: _d, version: _v, position: _p, authorizedPrincipals: _a, correlationIds: _c, ...rest } = doc;
  return { ...rest, payload: decodeKeys(rest.payload) as Payload, correlations: correlationMap(rest.correlations) };
}

export function dataEntryOf(doc: DataEntryDocument): DataEntry & { createdDate: string; lastModifiedDate: string } {
  const { _id, deleted: _d, version: _v, position: _p, authorizedPrincipals: _a, correlationIds: _c, involvedUsers: _i, ...rest } = doc;
  return { ...rest, payload: decodeKeys(rest.payload) as Payload, correlations: correlationMap(rest.correlations) };
}

export function processDefinitionOf(doc: ProcessDefinitionDocument): ProcessDefinition {
  return stripTracked<ProcessDefinition>(doc);
}

export function processInstanceOf(doc: ProcessInstanceDocument): ProcessInstance & { state: ProcessInstanceStatus } {
  return stripTracked<ProcessInstance & { state: ProcessInstanceStatus }>(doc, ["applicationName"]);
}

export function processVariableOf(doc: ProcessVariableDocument) {
  const { _id, deleted: _d, version: _v, position: _p, authorizedPrincipals: _a, ...rest } = doc;
  return { ...rest, value: { ...rest.value, value: decodeKeys(rest.value.value) } };
}
