// The map of the platform's actions that are called by name: for each, the params a caller passes and the result it
// gets back, so that a call between services is checked by the compiler like a function call (`callAction`, and
// `ActionCall` for modules that take a bound `call`). The types come from where the handlers are written — the
// event store, the view's queries, the deciders' commands — and are only named here.
//
// Every layer calls through this module, so it imports types alone (`import type`, erased at run time): the one
// kernel module that names the features' types; eslint.config.mjs allows it that and nothing more.
//
// Params are what a caller passes, before validation: a field the action's params schema defaults is optional here.
import type { CallingOptions, Context } from "moleculer";
import type { AppendParams, AppendResult, ProcessorWithLag } from "../stores/event-log.ts";
import type { EventStore, RecordedEvent } from "../stores/event-store.ts";
import type { CommandInput, CommandResult } from "../domain/decider.ts";
import type { AddCandidateGroups, AddCandidateUsers, AssignTask, ClaimTask, CompleteTask, CreateTask, DeferTask, DeleteCandidateGroups, DeleteCandidateUsers, DeleteTask, ReportTaskInteractionRefused, RequestTaskCompletion, UnclaimTask, UndeferTask, UpdateTaskAttributes } from "../domain/task.ts";
import type { AnonymizeDataEntry, CreateOrUpdateDataEntry, DeleteDataEntry } from "../domain/data-entry.ts";
import type { RegisterProcessDefinition, ReportProcessStartRefused, RequestProcessStart, StartRequestRecord } from "../domain/process-definition.ts";
import type { CancelProcessInstance, FinishProcessInstance, ResumeProcessInstance, StartProcessInstance, SuspendProcessInstance } from "../domain/process-instance.ts";
import type { ChangeProcessVariables } from "../domain/process-variables.ts";
import type { ViewQueries } from "../view/queries.ts";
import type { ReplayState } from "../view/replay.ts";
import type { ViewStore } from "../view/stores/store.ts";
import type { EventInfo, NodeHealth, NodeInfo, ServiceInfo } from "../gateway/dashboard.ts";
import type { ApiActionParams } from "../gateway/platform-routes.ts";

/** An action's params and result. */
interface Action<P, R> {
  params: P;
  result: R;
}

type Result<M extends keyof EventStore> = EventStore[M] extends (...args: never[]) => Promise<infer R> ? R : never;

// ---- eventstore (services/eventstore.service.ts) ----

export interface EventStoreActions {
  "eventstore.append": Action<AppendParams, AppendResult>;
  "eventstore.readStream": Action<{ streamId: string; fromVersion?: number; maxCount?: number; allowEmpty?: boolean }, { streamId: string; streamVersion: number; events: RecordedEvent[] }>;
  "eventstore.readAll": Action<{ after?: string; limit?: number; maxBytes?: number; eventTypes?: string[]; streamPrefix?: string }, Result<"readAll">>;
  "eventstore.head": Action<Record<never, never>, Result<"head">>;
  "eventstore.countAfter": Action<{ token: string; cap?: number }, { count: number }>;
  "eventstore.tokenOf": Action<{ globalPosition: number }, { token: Result<"tokenOf"> }>;
  "eventstore.claimProcessor": Action<{ name: string; owner: string; leaseMs: number }, Result<"claimProcessor">>;
  "eventstore.renewProcessor": Action<{ name: string; owner: string; leaseMs: number; token?: string | null }, Result<"renewProcessor">>;
  "eventstore.saveProcessorToken": Action<{ name: string; owner: string; token: string }, Result<"saveProcessorToken">>;
  "eventstore.releaseProcessor": Action<{ name: string; owner: string; status?: string; lastError?: string | null }, true>;
  "eventstore.processorStatus": Action<{ name: string; owner: string; status: string; lastError?: string | null }, true>;
  "eventstore.restartProcessor": Action<{ name: string }, true>;
  "eventstore.resetProcessor": Action<{ name: string; token?: string }, true>;
  "eventstore.parkEvent": Action<{ processor: string; event: RecordedEvent; error: string; attempts: number }, true>;
  "eventstore.parkedEvents": Action<{ processor: string }, Result<"parkedEvents">>;
  "eventstore.processors": Action<Record<never, never>, ProcessorWithLag[]>;
}

// ---- view (services/view.service.ts): its queries are view/queries.ts's, one action each ----

/** Query params the view's schemas default (page 0, size 1000, flags false). */
type Defaulted = "page" | "size" | "assignedToMeOnly" | "involvementsOnly" | "includeAssigned";
type QueryInput<P> = Omit<P, Defaulted> & Partial<Pick<P, Extract<keyof P, Defaulted>>>;

type ViewQueryActions = {
  [K in keyof ViewQueries as `view.${K & string}`]: ViewQueries[K] extends (params: infer P) => infer R ? Action<QueryInput<P>, Awaited<R>> : never;
};

/** What `view.position` answers: the position the view has applied, of which generation, in which store. */
export interface ViewPosition {
  token: string;
  globalPosition: number;
  generation: number;
  store: ViewStore["kind"];
}

export interface ViewActions extends ViewQueryActions {
  "view.position": Action<Record<never, never>, ViewPosition>;
  "view.replay": Action<Record<never, never>, ReplayState>;
  "view.replayStatus": Action<Record<never, never>, ReplayState | null>;
}

// ---- the command services (services/task, data-entry, process-*.service.ts: mixins/aggregate.mixin.ts) ----

/** A command action: the command's fields as a caller passes them (`D`: those its schema defaults), its result. */
type Command<C, D extends keyof C = never> = Action<CommandInput<C, D>, CommandResult>;

export interface CommandActions {
  "task.create": Command<CreateTask>;
  "task.assign": Command<AssignTask>;
  "task.complete": Command<CompleteTask>;
  "task.delete": Command<DeleteTask>;
  "task.updateAttributes": Command<UpdateTaskAttributes, "enriched">;
  "task.addCandidateUsers": Command<AddCandidateUsers>;
  "task.deleteCandidateUsers": Command<DeleteCandidateUsers>;
  "task.addCandidateGroups": Command<AddCandidateGroups>;
  "task.deleteCandidateGroups": Command<DeleteCandidateGroups>;
  "task.claim": Command<ClaimTask>;
  "task.unclaim": Command<UnclaimTask>;
  "task.defer": Command<DeferTask>;
  "task.undefer": Command<UndeferTask>;
  "task.requestCompletion": Command<RequestTaskCompletion, "payload">;
  "task.reportInteractionRefused": Command<ReportTaskInteractionRefused>;
  /** The entry's human-readable type is `type` here, `typeName` in the command (whose `type` names the command). */
  "dataEntry.createOrUpdate": Action<CommandInput<Omit<CreateOrUpdateDataEntry, "typeName">> & { type: string }, CommandResult>;
  "dataEntry.delete": Command<DeleteDataEntry>;
  "dataEntry.anonymize": Command<AnonymizeDataEntry, "excludedUsernames">;
  "processDefinition.register": Command<RegisterProcessDefinition, "startableFromTasklist" | "candidateStarterUsers" | "candidateStarterGroups">;
  "processDefinition.requestStart": Command<RequestProcessStart, "variables">;
  "processDefinition.reportStartRefused": Command<ReportProcessStartRefused>;
  /** Not a command: what became of a start request (null: the definition does not remember it). */
  "processDefinition.startRequest": Action<
    { processDefinitionId: string; requestId: string },
    (StartRequestRecord & { processDefinitionId: string; processDefinitionKey: string; applicationName: string }) | null
  >;
  "processInstance.start": Command<StartProcessInstance>;
  "processInstance.finish": Command<FinishProcessInstance>;
  "processInstance.cancel": Command<CancelProcessInstance>;
  "processInstance.suspend": Command<SuspendProcessInstance>;
  "processInstance.resume": Command<ResumeProcessInstance>;
  "processVariable.change": Command<ChangeProcessVariables>;
}

/** The commands (every action of CommandActions but the start-request query). */
export type CommandName = Exclude<keyof CommandActions, "processDefinition.startRequest">;

// ---- the gateway (services/api.service.ts): params as moleculer-web hands them over, checked by ACTION_PARAMS ----

export type ApiActions = {
  [K in keyof ApiActionParams as `api.${K & string}`]: Action<ApiActionParams[K], unknown>;
};

// ---- Moleculer's own node service ($node) ----

export interface NodeActions {
  "$node.list": Action<{ onlyAvailable?: boolean; withServices?: boolean }, NodeInfo[]>;
  "$node.services": Action<{ onlyLocal?: boolean; skipInternal?: boolean; withActions?: boolean; withEvents?: boolean; onlyAvailable?: boolean }, ServiceInfo[]>;
  "$node.events": Action<{ onlyLocal?: boolean; skipInternal?: boolean; withEndpoints?: boolean; onlyAvailable?: boolean }, EventInfo[]>;
  "$node.health": Action<Record<never, never>, NodeHealth>;
}

/** Every action called by name, by its full name. */
export interface Actions extends EventStoreActions, ViewActions, CommandActions, ApiActions, NodeActions {}

export type ActionName = keyof Actions;
export type ActionParams<A extends ActionName> = Actions[A]["params"];
export type ActionResult<A extends ActionName> = Actions[A]["result"];

/** The context of an action's handler: its params as mapped here (the action's params schema checks them). */
export type ActionContext<A extends ActionName, Meta extends object = object> = Context<ActionParams<A>, Meta>;

/** A typed call, as a module takes it (a context's or a broker's `call`, through `actionCallOf`). */
export type ActionCall = <A extends ActionName>(action: A, params: ActionParams<A>, opts?: CallingOptions) => Promise<ActionResult<A>>;

/** What can call an action: a Moleculer context or broker. */
export interface Caller {
  call(action: string, params?: unknown, opts?: CallingOptions): Promise<unknown>;
}

/** Calls `action` through a broker or a context: the name, params and result checked against the map. */
export function callAction<A extends ActionName>(caller: Caller, action: A, params: ActionParams<A>, opts?: CallingOptions): Promise<ActionResult<A>> {
  // The map states what the action answers; Moleculer's call does not know it.
  return caller.call(action, params, opts) as Promise<ActionResult<A>>;
}

/** A typed `call` bound to a broker or a context, for modules that take an ActionCall. */
export function actionCallOf(caller: Caller): ActionCall {
  return (action, params, opts) => callAction(caller, action, params, opts);
}
