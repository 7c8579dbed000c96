// The data-entry sender of a process application (Polyflow §4.14): builds the `dataEntry.createOrUpdate`,
// `dataEntry.delete` and `dataEntry.anonymize` calls for the application's business objects, with Polyflow's
// defaults (name = entry id, type = entry type, state UNDEFINED, the modifying user authorized) and a command id
// derived from the content, so that a resend after a lost answer is applied once while a later change with a
// new modification time is a new command. The application sends them with `broker.call(action, params)`.
// Pure: no I/O, no clock (the modification carries the time).
import { createHash } from "node:crypto";
import type { AuthorizationChange, DataEntryProcessingState, Modification } from "../data-entry.ts";
import type { Correlations, Payload } from "../types.ts";
import type { ActionParams } from "../../lib/actions.ts";

export interface DataEntryChangeInput {
  entryType: string;
  entryId: string;
  payload?: Payload;
  /** Default: the entry id. */
  name?: string;
  description?: string | null;
  /** Human-readable type; default: the entry type. */
  type?: string;
  /** Default: UNDEFINED with an empty label. */
  state?: DataEntryProcessingState;
  modification: Modification;
  correlations?: Correlations;
  formKey?: string | null;
  /** Default: the modifying user (when there is one) is authorized. */
  authorizationChanges?: AuthorizationChange[];
}

type DataEntryAction = "dataEntry.createOrUpdate" | "dataEntry.delete" | "dataEntry.anonymize";
/** A command's params without its id (the id is derived from them). */
type Content<A extends DataEntryAction> = Omit<ActionParams<A>, "commandId">;

/** A call of a `dataEntry` command: its name and params (lib/actions.ts), with the id derived from their content. */
export type DataEntryCommandPlan = { [A in DataEntryAction]: { action: A; params: Content<A> & { commandId: string } } }[DataEntryAction];

function stable(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`)
    .join(",")}}`;
}

function commandIdOf(applicationName: string, kind: string, params: Record<string, unknown>): string {
  return `${applicationName.slice(0, 100)}:de-${kind}:${createHash("sha256").update(stable(params)).digest("hex").slice(0, 32)}`;
}

/** Creates or updates the entry. */
export function dataEntryChange(applicationName: string, input: DataEntryChangeInput): DataEntryCommandPlan {
  const username = input.modification.username ?? null;
  const params: Content<"dataEntry.createOrUpdate"> = {
    entryType: input.entryType,
    entryId: input.entryId,
    type: input.type ?? input.entryType,
    applicationName,
    name: input.name ?? input.entryId,
    description: input.description ?? null,
    state: input.state ?? { processingType: "UNDEFINED", state: "" },
    payload: input.payload ?? {},
    correlations: input.correlations ?? {},
    formKey: input.formKey ?? null,
    authorizationChanges: input.authorizationChanges ?? (username ? [{ kind: "AddUser", name: username }] : []),
    modification: input.modification,
  };
  return { action: "dataEntry.createOrUpdate", params: { ...params, commandId: commandIdOf(applicationName, "change", params) } };
}

/** Deletes the entry (state default: DELETED). */
export function dataEntryDeletion(
  applicationName: string,
  input: { entryType: string; entryId: string; modification: Modification; state?: DataEntryProcessingState | null },
): DataEntryCommandPlan {
  const params: Content<"dataEntry.delete"> = { entryType: input.entryType, entryId: input.entryId, modification: input.modification, state: input.state ?? null };
  return { action: "dataEntry.delete", params: { ...params, commandId: commandIdOf(applicationName, "delete", params) } };
}

/** Anonymizes the entry's protocol and user authorizations, except the excluded (technical) user names. */
export function dataEntryAnonymization(
  applicationName: string,
  input: { entryType: string; entryId: string; anonymizedUsername: string; excludedUsernames?: string[]; modification: Modification },
): DataEntryCommandPlan {
  const params: Content<"dataEntry.anonymize"> = {
    entryType: input.entryType,
    entryId: input.entryId,
    anonymizedUsername: input.anonymizedUsername,
    excludedUsernames: input.excludedUsernames ?? [],
    modification: input.modification,
  };
  return { action: "dataEntry.anonymize", params: { ...params, commandId: commandIdOf(applicationName, "anonymize", params) } };
}
