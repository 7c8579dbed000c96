// Who may see what in the view (polyflow.md §3.5, with the involvementsOnly leak fixed), as MongoDB filter
// documents over the view's documents. Pure.
import type { User } from "../domain/types.ts";
import { principalsOf } from "./documents.ts";
import type { MongoFilter } from "./filters.ts";

export const live: MongoFilter = { deleted: false };

/** A task the user is assignee of, a candidate user of, or shares a candidate group with. */
export function taskVisibleTo(user: User): MongoFilter {
  return { authorizedPrincipals: { $in: principalsOf(user) } };
}

export function assignedTo(user: User): MongoFilter {
  return { assignee: user.username };
}

/** Candidate user, or a candidate group of the user. */
export function candidateOf(user: User): MongoFilter {
  return { $or: [{ candidateUsers: user.username }, { candidateGroups: { $in: user.groups } }] };
}

export function candidateGroupOf(user: User): MongoFilter {
  return { candidateGroups: { $in: user.groups } };
}

/** `(assignee != null) == includeAssigned`, as TasksForGroupQuery has it. */
export function assignedState(includeAssigned: boolean): MongoFilter {
  return includeAssigned ? { assignee: { $ne: null } } : { assignee: null };
}

/** A data entry authorized to the user or one of the user's groups. */
export function dataEntryVisibleTo(user: User): MongoFilter {
  return { authorizedPrincipals: { $in: principalsOf(user) } };
}

/** A data entry whose protocol names the user. */
export function involving(user: User): MongoFilter {
  return { involvedUsers: user.username };
}

/** A process definition the user may start from the task list. */
export function startableBy(user: User): MongoFilter {
  return { startableFromTasklist: true, authorizedPrincipals: { $in: principalsOf(user) } };
}
