// The data entry aggregate: one business object of the data pool ("request #42"), identified by entryType and
// entryId. It owns create-or-update, deletion under the configured strategy, anonymisation, and the folding of
// authorization deltas and the audit protocol into the entry.
import { assertNever, DomainError, type Decider, type DomainEvent } from "./decider.ts";
import { jsonEqual, orNull, type Correlations, type IsoDate, type Payload } from "./types.ts";

export function dataEntryId(entryType: string, entryId: string): string {
  return `${entryType}#${entryId}`;
}

export function dataEntryStreamId(entryType: string, entryId: string): string {
  return `dataEntry-${dataEntryId(entryType, entryId)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Shapes

export type ProcessingType = "PRELIMINARY" | "IN_PROGRESS" | "COMPLETED" | "CANCELLED" | "UNDEFINED" | "DELETED";

/** Where the business object is in its life: a processing type plus a free business label ("Approved"). */
export interface DataEntryProcessingState {
  processingType: ProcessingType;
  state: string;
}

export const deletedProcessingState: DataEntryProcessingState = { processingType: "DELETED", state: "deleted" };

export type AuthorizationChangeKind = "AddUser" | "RemoveUser" | "AddGroup" | "RemoveGroup";

export interface AuthorizationChange {
  kind: AuthorizationChangeKind;
  name: string;
}

/** Who changed the entry, when, and why; becomes one protocol entry. */
export interface Modification {
  time: IsoDate;
  username?: string | null;
  log?: string | null;
  logNotes?: string | null;
}

/** A Modification as events carry it: every field explicit. */
export interface RecordedModification {
  time: IsoDate;
  username: string | null;
  log: string | null;
  logNotes: string | null;
}

export interface ProtocolEntry {
  time: IsoDate;
  processingType: ProcessingType;
  state: string;
  username: string | null;
  logMessage: string | null;
  logDetails: string | null;
}

export interface DataEntry {
  entryType: string;
  entryId: string;
  /** Human-readable type, e.g. "Approval Request". */
  type: string;
  applicationName: string;
  name: string;
  description: string | null;
  state: DataEntryProcessingState;
  payload: Payload;
  correlations: Correlations;
  formKey: string | null;
  authorizedUsers: string[];
  authorizedGroups: string[];
  protocol: ProtocolEntry[];
}

export type DeletionStrategy = "lax" | "strict";

// Commands ------------------------------------------------------------------------------------------------------

export interface CreateOrUpdateDataEntry {
  type: "CreateOrUpdateDataEntry";
  entryType: string;
  entryId: string;
  /** The human-readable type (`type` in events and state); renamed here because `type` names the command. */
  typeName: string;
  applicationName: string;
  name: string;
  description?: string | null;
  state: DataEntryProcessingState;
  payload?: Payload | null;
  correlations?: Correlations | null;
  formKey?: string | null;
  authorizationChanges?: AuthorizationChange[] | null;
  modification: Modification;
}

export interface DeleteDataEntry {
  type: "DeleteDataEntry";
  entryType: string;
  entryId: string;
  modification: Modification;
  state?: DataEntryProcessingState | null;
}

export interface AnonymizeDataEntry {
  type: "AnonymizeDataEntry";
  entryType: string;
  entryId: string;
  anonymizedUsername: string;
  /** Technical users (e.g. "SYSTEM") that keep their name in the protocol and their authorization. */
  excludedUsernames: string[];
  modification: Modification;
}

export type DataEntryCommand = CreateOrUpdateDataEntry | DeleteDataEntry | AnonymizeDataEntry;

// Events --------------------------------------------------------------------------------------------------------

export interface DataEntryChangedData {
  entryType: string;
  entryId: string;
  type: string;
  applicationName: string;
  name: string;
  description: string | null;
  state: DataEntryProcessingState;
  payload: Payload;
  correlations: Correlations;
  formKey: string | null;
  /** Deltas to apply to the authorized users and groups, in order; not absolute sets. */
  authorizationChanges: AuthorizationChange[];
  modification: RecordedModification;
}

export type DataEntryCreated = DomainEvent<"DataEntryCreated", DataEntryChangedData>;
export type DataEntryUpdated = DomainEvent<"DataEntryUpdated", DataEntryChangedData>;
export type DataEntryDeleted = DomainEvent<
  "DataEntryDeleted",
  { entryType: string; entryId: string; state: DataEntryProcessingState; modification: RecordedModification }
>;
export type DataEntryAnonymized = DomainEvent<
  "DataEntryAnonymized",
  {
    entryType: string;
    entryId: string;
    anonymizedUsername: string;
    excludedUsernames: string[];
    modification: RecordedModification;
  }
>;

export type DataEntryEvent = DataEntryCreated | DataEntryUpdated | DataEntryDeleted | DataEntryAnonymized;

// State ---------------------------------------------------------------------------------------------------------

export type DataEntryStatus = "initial" | "active" | "deleted";

export interface DataEntryState {
  status: DataEntryStatus;
  entry: DataEntry | null;
}

export const initialDataEntryState: DataEntryState = { status: "initial", entry: null };

// ---------------------------------------------------------------------------------------------------------------
// Decide

function recorded(modification: Modification): RecordedModification {
  return {
    time: modification.time,
    username: orNull(modification.username),
    log: orNull(modification.log),
    logNotes: orNull(modification.logNotes),
  };
}

function changedData(command: CreateOrUpdateDataEntry): DataEntryChangedData {
  return {
    entryType: command.entryType,
    entryId: command.entryId,
    type: command.typeName,
    applicationName: command.applicationName,
    name: command.name,
    description: orNull(command.description),
    state: { processingType: command.state.processingType, state: command.state.state },
    payload: command.payload ?? {},
    correlations: command.correlations ?? {},
    formKey: orNull(command.formKey),
    authorizationChanges: (command.authorizationChanges ?? []).map(({ kind, name }) => ({ kind, name })),
    modification: recorded(command.modification),
  };
}

function notFound(command: DataEntryCommand): DomainError {
  const id = dataEntryId(command.entryType, command.entryId);
  return new DomainError("NOT_FOUND", `data entry ${id} does not exist`, { aggregate: "dataEntry", id });
}

function deletedConflict(command: DataEntryCommand): DomainError {
  const id = dataEntryId(command.entryType, command.entryId);
  return new DomainError("CONFLICT", `data entry ${id} is deleted (deletion strategy strict)`, {
    aggregate: "dataEntry",
    id,
    deletionStrategy: "strict",
  });
}

/**
 * Whether a delete or anonymize has an entry to act on: never created is NOT_FOUND; already deleted is nothing to
 * do under lax deletion and a CONFLICT under strict deletion.
 */
function isLive(command: DeleteDataEntry | AnonymizeDataEntry, state: DataEntryState, strategy: DeletionStrategy): boolean {
  if (state.status === "initial") throw notFound(command);
  if (state.status === "deleted") {
    if (strategy === "strict") throw deletedConflict(command);
    return false;
  }
  return true;
}

function decider(strategy: DeletionStrategy): (command: DataEntryCommand, state: DataEntryState) => DataEntryEvent[] {
  return (command, state) => {
    switch (command.type) {
      case "CreateOrUpdateDataEntry":
        if (state.status === "deleted" && strategy === "strict") throw deletedConflict(command);
        // Under lax deletion a deleted entry comes back as a new one: consumers that dropped it see a fresh start.
        return [{ type: state.status === "active" ? "DataEntryUpdated" : "DataEntryCreated", data: changedData(command) }];
      case "DeleteDataEntry":
        if (!isLive(command, state, strategy)) return [];
        return [
          {
            type: "DataEntryDeleted",
            data: {
              entryType: command.entryType,
              entryId: command.entryId,
              state: command.state
                ? { processingType: command.state.processingType, state: command.state.state }
                : { ...deletedProcessingState },
              modification: recorded(command.modification),
            },
          },
        ];
      case "AnonymizeDataEntry":
        if (!isLive(command, state, strategy)) return [];
        return [
          {
            type: "DataEntryAnonymized",
            data: {
              entryType: command.entryType,
              entryId: command.entryId,
              anonymizedUsername: command.anonymizedUsername,
              excludedUsernames: [...new Set(command.excludedUsernames)].sort(),
              modification: recorded(command.modification),
            },
          },
        ];
      default:
        return assertNever(command, "data entry command");
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Evolve

/** Applies the deltas in order; the result is sorted and duplicate-free. */
export function applyAuthorizationChanges(
  users: string[],
  groups: string[],
  changes: AuthorizationChange[],
): { authorizedUsers: string[]; authorizedGroups: string[] } {
  const userSet = new Set(users);
  const groupSet = new Set(groups);
  for (const change of changes) {
    switch (change.kind) {
      case "AddUser":
        userSet.add(change.name);
        break;
      case "RemoveUser":
        userSet.delete(change.name);
        break;
      case "AddGroup":
        groupSet.add(change.name);
        break;
      case "RemoveGroup":
        groupSet.delete(change.name);
        break;
      default:
        assertNever(change.kind, "authorization change");
    }
  }
  return { authorizedUsers: [...userSet].sort(), authorizedGroups: [...groupSet].sort() };
}

function protocolEntry(modification: RecordedModification, state: DataEntryProcessingState, username: string | null): ProtocolEntry {
  return {
    time: modification.time,
    processingType: state.processingType,
    state: state.state,
    username,
    logMessage: modification.log,
    logDetails: modification.logNotes,
  };
}

/** Senders retry; the same modification reported twice is one change, not two. */
function appendProtocol(protocol: ProtocolEntry[], entry: ProtocolEntry): ProtocolEntry[] {
  const last = protocol.at(-1);
  return last !== undefined && jsonEqual(last, entry) ? protocol : [...protocol, entry];
}

function entryFrom(data: DataEntryChangedData, previous: DataEntry | null): DataEntry {
  const authorizations = applyAuthorizationChanges(
    previous?.authorizedUsers ?? [],
    previous?.authorizedGroups ?? [],
    data.authorizationChanges,
  );
  const entry = protocolEntry(data.modification, data.state, data.modification.username);
  return {
    entryType: data.entryType,
    entryId: data.entryId,
    type: data.type,
    applicationName: data.applicationName,
    name: data.name,
    description: data.description,
    state: data.state,
    payload: data.payload,
    correlations: data.correlations,
    formKey: data.formKey,
    ...authorizations,
    protocol: appendProtocol(previous?.protocol ?? [], entry),
  };
}

function evolve(state: DataEntryState, event: DataEntryEvent): DataEntryState {
  switch (event.type) {
    case "DataEntryCreated":
      return { status: "active", entry: entryFrom(event.data, null) };
    case "DataEntryUpdated":
      return { status: "active", entry: entryFrom(event.data, state.entry) };
    case "DataEntryDeleted": {
      const entry = state.entry;
      if (entry === null) return state;
      const line = protocolEntry(event.data.modification, event.data.state, event.data.modification.username);
      return { status: "deleted", entry: { ...entry, state: event.data.state, protocol: appendProtocol(entry.protocol, line) } };
    }
    case "DataEntryAnonymized": {
      const entry = state.entry;
      if (entry === null) return state;
      const { anonymizedUsername, modification } = event.data;
      const excluded = new Set(event.data.excludedUsernames);
      const anonymize = (username: string | null): string | null =>
        username === null || excluded.has(username) ? username : anonymizedUsername;
      const protocol = entry.protocol.map((line) =>
        line.username === anonymize(line.username) ? line : { ...line, username: anonymize(line.username) },
      );
      const line = protocolEntry(modification, entry.state, anonymize(modification.username));
      return {
        ...state,
        entry: {
          ...entry,
          authorizedUsers: entry.authorizedUsers.filter((user) => excluded.has(user)),
          protocol: appendProtocol(protocol, line),
        },
      };
    }
    default:
      return assertNever(event, "data entry event");
  }
}

export interface DataEntryDeciderOptions {
  /** lax (default): an update after a delete re-creates the entry. strict: the entry stays deleted for good. */
  deletionStrategy?: DeletionStrategy;
}

export function dataEntryDecider(
  options: DataEntryDeciderOptions = {},
): Decider<DataEntryCommand, DataEntryState, DataEntryEvent> {
  return { initialState: initialDataEntryState, decide: decider(options.deletionStrategy ?? "lax"), evolve };
}
