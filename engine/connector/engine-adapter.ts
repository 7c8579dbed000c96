// The engine-neutral contract between the engine connector (connector.ts) and a BPMN
// engine: what the connector reads (open and finished user tasks, process definitions, process instances,
// variable changes — each as a change feed ordered by the engine's own timestamps), and what it asks the engine
// to do on behalf of users (claim, unclaim, follow-up date, complete, start a process). Operaton / Camunda 7
// over REST implements it in engine/operaton/operaton-adapter.ts; the embedded `bpmn-engine` implements the same interface.
//
// Feeds: `list…Since({ since })` returns the rows whose change time is at or after `since` (a null `since`
// means from the beginning), in any order, paged by `firstResult`/`maxResults` under unchanged parameters;
// `done` says that the engine has no further page (an adapter may drop rows of other processes from a page, so
// a short page does not mean the end). Each row carries its change time as ISO UTC from the engine's clock. The
// connector overlaps, de-duplicates and keeps the watermarks; an adapter only has to be honest about times and
// never skip a row it has.
import type { IsoDate } from "../../domain/types.ts";
import type { JsonObject } from "../../domain/types.ts";
import type { EngineTaskFacts } from "./task-diff.ts";
import type { EngineValue, EngineVariables } from "../../domain/engine/variables.ts";

export type { EngineValue, EngineVariables };

/** An open user task. `variables` is present when the adapter could read them along with the task. */
export interface EngineTask extends Omit<EngineTaskFacts, "candidateUsers" | "candidateGroups"> {
  /** Null while the task was not changed since its creation. */
  lastUpdated: IsoDate | null;
  suspended: boolean;
  candidateUsers?: string[];
  candidateGroups?: string[];
  variables?: EngineVariables;
}

/** An open task with everything the connector needs to build its snapshot. */
export interface EngineTaskWithDetails extends EngineTask {
  candidateUsers: string[];
  candidateGroups: string[];
  variables: EngineVariables;
}

/** A user task that ended (history). */
export interface FinishedTask {
  id: string;
  taskDefinitionKey: string;
  processInstanceId: string | null;
  executionId: string | null;
  processDefinitionId: string | null;
  processDefinitionKey: string | null;
  name: string | null;
  description: string | null;
  assignee: string | null;
  owner: string | null;
  priority: number | null;
  startTime: IsoDate | null;
  endTime: IsoDate;
  dueDate: IsoDate | null;
  followUpDate: IsoDate | null;
  tenantId: string | null;
  outcome: "completed" | "deleted";
  deleteReason: string | null;
}

export interface ProcessDefinitionInfo {
  id: string;
  key: string;
  version: number;
  name: string | null;
  versionTag: string | null;
  description: string | null;
  tenantId: string | null;
  suspended: boolean;
  deploymentId: string | null;
  startFormKey: string | null;
  startableInTasklist: boolean;
  candidateStarterUsers: string[];
  candidateStarterGroups: string[];
}

/** A deployment, the change feed for process definitions. */
export interface DeploymentInfo {
  id: string;
  deploymentTime: IsoDate;
}

export type ProcessInstanceState = "ACTIVE" | "SUSPENDED" | "COMPLETED" | "EXTERNALLY_TERMINATED" | "INTERNALLY_TERMINATED";

export interface ProcessInstanceInfo {
  id: string;
  definitionId: string;
  definitionKey: string;
  definitionName: string | null;
  businessKey: string | null;
  startTime: IsoDate;
  endTime: IsoDate | null;
  state: ProcessInstanceState;
  startUserId: string | null;
  startActivityId: string | null;
  superProcessInstanceId: string | null;
  deleteReason: string | null;
  tenantId: string | null;
}

/** A suspension or activation of a process instance. */
export interface InstanceOperation {
  id: string;
  time: IsoDate;
  processInstanceId: string;
  processDefinitionKey: string | null;
  operation: "Suspend" | "Activate";
}

/** One change of one variable (create, update or delete), with its revision. */
export interface VariableUpdate {
  id: string;
  time: IsoDate;
  processInstanceId: string;
  processDefinitionId: string | null;
  processDefinitionKey: string | null;
  variableInstanceId: string;
  variableName: string;
  revision: number;
  activityInstanceId: string | null;
  taskId: string | null;
  /** Undefined when the value has no JSON form. */
  value: EngineValue | undefined;
  kind: "create" | "update" | "delete";
}

export interface Page {
  firstResult: number;
  maxResults: number;
  /** Only these process definition keys (null or absent: all). */
  processDefinitionKeys?: readonly string[] | null;
}

export interface ChangeQuery extends Page {
  since: IsoDate | null;
}

/** One page of a listing; `done` when the engine has nothing after it. */
export interface PageOf<T> {
  rows: T[];
  done: boolean;
  /**
   * The newest change time among the rows the engine returned for this page, counting those the adapter left
   * out (other processes): the connector may move its watermark past them, so that another application's
   * history does not keep its reads growing.
   */
  newest?: IsoDate | null;
}

export type FeedName = "tasks" | "finishedTasks" | "deployments" | "startedInstances" | "finishedInstances" | "instanceOperations" | "variableUpdates";

export interface EngineDescription {
  product: string;
  version: string | null;
}

/** Why the engine refused or failed a request. */
export type EngineErrorKind =
  /** The state does not allow it (e.g. the task is claimed by someone else). */
  | "conflict"
  /** The object does not exist (any more). */
  | "gone"
  /** A concurrent change won; read again and retry. */
  | "retry"
  /** The request itself is wrong (bad variable, unknown definition, …). */
  | "invalid"
  /** The engine could not be reached or timed out. */
  | "unavailable"
  | "failed";

export class EngineError extends Error {
  readonly kind: EngineErrorKind;
  readonly status: number | null;
  /** The engine's exception type, when it said. */
  readonly engineType: string | null;
  /** The engine's own words, fit to show a user (the message adds the request). */
  readonly reason: string;

  constructor(kind: EngineErrorKind, message: string, details: { status?: number | null; engineType?: string | null; reason?: string | null } = {}) {
    super(message);
    this.name = "EngineError";
    this.kind = kind;
    this.status = details.status ?? null;
    this.engineType = details.engineType ?? null;
    this.reason = details.reason ?? message;
  }
}

export function isEngineError(err: unknown, kind?: EngineErrorKind): err is EngineError {
  return err instanceof EngineError && (kind === undefined || err.kind === kind);
}

export interface StartProcessRequest {
  processDefinitionId: string;
  businessKey: string | null;
  variables: JsonObject;
}

export interface EngineAdapter {
  describe(): Promise<EngineDescription>;

  // Open tasks -----------------------------------------------------------------------------------------------
  /** Open tasks created or changed at or after `since`; the change time is `lastUpdated ?? createTime`. */
  listTasksChangedSince(query: ChangeQuery): Promise<PageOf<EngineTask>>;
  /** All open tasks, ordered by id (reconciliation, import); optionally of one process instance. */
  listOpenTasks(page: Page & { processInstanceId?: string | null }): Promise<PageOf<EngineTask>>;
  /** One open task, or null when the engine has no such open task (completed, deleted, never existed). */
  getTask(taskId: string): Promise<EngineTask | null>;
  /** Candidates and variables of an open task (what the list did not carry); null when it is gone meanwhile. */
  loadTaskDetails(task: EngineTask): Promise<EngineTaskWithDetails | null>;

  // Finished tasks -------------------------------------------------------------------------------------------
  listFinishedTasksSince(query: ChangeQuery): Promise<PageOf<FinishedTask>>;
  /** A finished task from history, or null when history has none (still open, cleaned up, never existed). */
  getFinishedTask(taskId: string): Promise<FinishedTask | null>;
  /** The candidates a finished task had at its end, as far as history knows. */
  getFinishedTaskCandidates(taskId: string): Promise<{ candidateUsers: string[]; candidateGroups: string[] }>;

  // Processes ------------------------------------------------------------------------------------------------
  listDeploymentsSince(query: ChangeQuery): Promise<PageOf<DeploymentInfo>>;
  listProcessDefinitions(query: Page & { deploymentId?: string | null; latestVersionOnly?: boolean }): Promise<PageOf<ProcessDefinitionInfo>>;
  /** Key and name of a definition (cheap, cached by adapters); null when unknown. */
  getProcessDefinition(definitionId: string): Promise<Pick<ProcessDefinitionInfo, "id" | "key" | "name" | "version" | "tenantId"> | null>;
  listInstancesStartedSince(query: ChangeQuery): Promise<PageOf<ProcessInstanceInfo>>;
  listInstancesFinishedSince(query: ChangeQuery): Promise<PageOf<ProcessInstanceInfo>>;
  /** Running (active or suspended) instances, ordered by id. */
  listRunningInstances(page: Page): Promise<PageOf<ProcessInstanceInfo>>;
  getProcessInstance(instanceId: string): Promise<ProcessInstanceInfo | null>;
  /** Several instances at once (those the engine does not know are left out). */
  getProcessInstances(instanceIds: readonly string[]): Promise<ProcessInstanceInfo[]>;
  listInstanceOperationsSince(query: ChangeQuery): Promise<PageOf<InstanceOperation>>;
  listVariableUpdatesSince(query: ChangeQuery): Promise<PageOf<VariableUpdate>>;
  /** The variables of an instance: current ones while it runs, the last known ones after its end. */
  getProcessVariables(instanceId: string): Promise<EngineVariables>;

  /** The newest change time of a feed right now (bootstrap: start after what existed before). */
  newestChangeTime(feed: FeedName, processDefinitionKeys?: readonly string[] | null): Promise<IsoDate | null>;

  // Interactions ---------------------------------------------------------------------------------------------
  /** Claims for a user; EngineError "conflict" when someone else holds the task. */
  claim(taskId: string, userId: string): Promise<void>;
  unclaim(taskId: string): Promise<void>;
  setAssignee(taskId: string, userId: string | null): Promise<void>;
  setFollowUpDate(taskId: string, followUpDate: IsoDate | null): Promise<void>;
  complete(taskId: string, variables: JsonObject): Promise<void>;
  startProcess(request: StartProcessRequest): Promise<{ processInstanceId: string }>;
  /** Instances (running or ended) that have a variable with this string value. */
  findInstancesByVariable(name: string, value: string): Promise<string[]>;

  close?(): Promise<void>;
}
