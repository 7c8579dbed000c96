// Pool → engine: what the engine connector does with the application's interaction events (TaskClaimed,
// TaskUnclaimed, TaskDeferred, TaskUndeferred, TaskToBeCompleted, ProcessStartRequested). Each is performed in
// the engine once (a record per event in the connector's state), retried a few times when the engine is briefly
// unavailable, and a refusal is reported to the pool (`task.reportInteractionRefused`,
// `processDefinition.reportStartRefused`). Afterwards the task is read again at once, so that the pool sees the
// engine's answer without waiting for the next poll. The connector (connector.ts) serializes the calls.
import type { JsonObject, Payload } from "../../domain/types.ts";
import { isErrorOfType } from "../../lib/errors.ts";
import { sleep } from "../../lib/sleep.ts";
import type { RecordedEvent } from "../../stores/event-store.ts";
import type { ConnectorState } from "./connector-state.ts";
import type { SendCommand } from "./sync-context.ts";
import { EngineError, isEngineError, type EngineAdapter, type ProcessInstanceInfo } from "./engine-adapter.ts";
import type { EngineConnectorSettings } from "./settings.ts";

export type InteractionName = "claim" | "unclaim" | "defer" | "undefer" | "complete";

/** The event types the connector performs. */
export const INTERACTION_EVENT_TYPES = ["TaskClaimed", "TaskUnclaimed", "TaskDeferred", "TaskUndeferred", "TaskToBeCompleted", "ProcessStartRequested"];

/** What a task interaction event carries (the fields the connector reads). */
interface TaskInteractionData {
  id: string;
  assignee?: string | null;
  previousAssignee?: string;
  followUpDate?: string;
  payload?: JsonObject;
  sourceReference?: { instanceId?: string; applicationName?: string };
}

interface StartRequestData {
  processDefinitionId: string;
  businessKey: string | null;
  variables: JsonObject;
  requestId: string;
  requestedBy: string;
  applicationName?: string;
}

/** Whether an interaction event is addressed to this application's engine. */
export function isOwnInteraction(event: Pick<RecordedEvent, "type" | "data">, applicationName: string): boolean {
  const data = event.data as { sourceReference?: { applicationName?: string }; applicationName?: string };
  if (event.type === "ProcessStartRequested") return data.applicationName === applicationName;
  return data.sourceReference?.applicationName === applicationName;
}

/** A task interaction to perform: what it is called, for whom, and the engine calls that do it. */
export interface TaskInteraction {
  interaction: InteractionName;
  taskId: string;
  username: string | null;
  perform: () => Promise<void>;
}

/** The engine calls of a task interaction event; null for an event that is none. */
export function taskInteractionOf(event: Pick<RecordedEvent, "type" | "data" | "metadata">, adapter: EngineAdapter): TaskInteraction | null {
  const data = event.data as unknown as TaskInteractionData;
  const actor = typeof event.metadata?.actor === "string" ? event.metadata.actor : null;
  const taskId = data.id;
  switch (event.type) {
    case "TaskClaimed":
      return { interaction: "claim", taskId, username: data.assignee ?? actor, perform: () => adapter.claim(taskId, data.assignee!) };
    case "TaskUnclaimed":
      return {
        interaction: "unclaim",
        taskId,
        username: data.previousAssignee ?? actor,
        perform: async () => {
          const task = await adapter.getTask(taskId);
          if (!task || task.assignee === null) return;
          // Give back only the claim the user saw; someone else's newer claim is not theirs to drop.
          if (data.previousAssignee && task.assignee !== data.previousAssignee) {
            throw new EngineError("conflict", `task ${taskId} is claimed by ${task.assignee}`, { reason: `the task is claimed by ${task.assignee} in the engine, not by ${data.previousAssignee}` });
          }
          await adapter.unclaim(taskId);
        },
      };
    case "TaskDeferred":
      return { interaction: "defer", taskId, username: actor, perform: () => adapter.setFollowUpDate(taskId, data.followUpDate!) };
    case "TaskUndeferred":
      return { interaction: "undefer", taskId, username: actor, perform: () => adapter.setFollowUpDate(taskId, null) };
    case "TaskToBeCompleted":
      return {
        interaction: "complete",
        taskId,
        username: data.assignee ?? actor,
        perform: async () => {
          const task = await adapter.getTask(taskId);
          if (!task) throw new EngineError("gone", `task ${taskId} is not open`);
          const completer = data.assignee ?? null;
          if (completer && task.assignee && task.assignee !== completer) {
            throw new EngineError("conflict", `task ${taskId} is claimed by ${task.assignee}`, { reason: `the task is claimed by ${task.assignee} in the engine` });
          }
          // The engine records who completed through the assignee.
          if (completer && !task.assignee) await adapter.claim(taskId, completer);
          await adapter.complete(taskId, data.payload ?? {});
        },
      };
    default:
      return null;
  }
}

/**
 * Runs `work`, again after a growing pause when it failed for a transient reason (engine unavailable, a
 * concurrent change), at most four times in all and not once the connector stops.
 */
export async function withEngineRetries<T>(work: () => Promise<T>, isStopping: () => boolean, wait: (ms: number) => Promise<void> = sleep): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isEngineError(err) || (err.kind !== "unavailable" && err.kind !== "retry") || attempt >= 4 || isStopping()) throw err;
      await wait(250 * 2 ** attempt);
    }
  }
}

/** What performing interactions needs of the connector. */
export interface InteractionHost {
  readonly applicationName: string;
  readonly settings: Pick<EngineConnectorSettings, "requestIdVariable" | "collectProcessInstances">;
  readonly adapter: EngineAdapter;
  readonly logger: { info(message: string): void };
  state(): ConnectorState;
  isStopping(): boolean;
  /** Sends a command to the pool (with an id, when given). */
  send: SendCommand;
  commandId(...parts: (string | number)[]): string;
  recordError(where: string, err: unknown): void;
  refreshTask(taskId: string): Promise<void>;
  refreshTasksOfInstance(instanceId: string): Promise<void>;
  observeInstance(instance: ProcessInstanceInfo): Promise<void>;
}

/** Performs one interaction event in the engine; `retried`: an earlier delivery of it was begun. */
export async function performInteraction(host: InteractionHost, event: RecordedEvent, retried: boolean): Promise<void> {
  if (event.type === "ProcessStartRequested") return performStart(host, event, retried);
  const planned = taskInteractionOf(event, host.adapter);
  if (!planned) return;
  const { interaction, taskId, username } = planned;
  const db = host.state();
  try {
    await withEngineRetries(planned.perform, () => host.isStopping());
    await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "performed", detail: { taskId } });
  } catch (err) {
    if (!isEngineError(err)) throw err;
    if (err.kind === "gone") {
      // The task ended in the engine meanwhile (perhaps by an earlier delivery of this very event); the
      // refresh below reports how, which tells the user more than a refusal would.
      await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: retried ? "performed" : "gone", detail: { taskId } });
    } else {
      let reason = err.reason;
      if (err.kind === "conflict" && interaction === "claim") {
        const holder = (await host.adapter.getTask(taskId).catch(() => null))?.assignee;
        reason = holder ? `the task is already claimed by ${holder} in the engine` : reason;
      }
      await refuse(host, event, interaction, reason, username);
    }
  }
  // Read-your-writes: the pool sees the engine's answer now, not at the next poll — after a completion also
  // the tasks the process moved on to.
  await host.refreshTask(taskId).catch((err) => host.recordError(`refresh of task ${taskId}`, err));
  const instanceId = (event.data as unknown as TaskInteractionData).sourceReference?.instanceId;
  if (interaction === "complete" && instanceId) {
    await host.refreshTasksOfInstance(instanceId).catch((err) => host.recordError(`refresh of instance ${instanceId}`, err));
  }
}

async function refuse(host: InteractionHost, event: RecordedEvent, interaction: InteractionName, reason: string, username: string | null): Promise<void> {
  const data = event.data as { id: string };
  host.logger.info(`Engine connector ${host.applicationName}: ${interaction} of task ${data.id} refused: ${reason}`);
  try {
    await host.send("task.reportInteractionRefused", { id: data.id, interaction, reason: reason.slice(0, 2000), username }, host.commandId("refused", event.eventId));
  } catch (err) {
    // The pool no longer has the task: nobody to tell.
    if (!isErrorOfType(err, "NOT_FOUND")) throw err;
  }
  await host.state().saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "refused", detail: { reason } });
}

async function performStart(host: InteractionHost, event: RecordedEvent, retried: boolean): Promise<void> {
  const data = event.data as unknown as StartRequestData;
  const { adapter } = host;
  const db = host.state();
  const variable = host.settings.requestIdVariable;
  const stopping = () => host.isStopping();
  let instanceId: string | null = null;
  if (retried && variable) {
    // An earlier delivery may have started it before the connector stopped.
    instanceId = (await withEngineRetries(() => adapter.findInstancesByVariable(variable, data.requestId), stopping))[0] ?? null;
  }
  if (!instanceId) {
    await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "pending", detail: { requestId: data.requestId } });
    const variables: Payload = { ...data.variables };
    if (variable) variables[variable] = data.requestId;
    try {
      instanceId = (await withEngineRetries(() => adapter.startProcess({ processDefinitionId: data.processDefinitionId, businessKey: data.businessKey, variables }), stopping)).processInstanceId;
    } catch (err) {
      if (!isEngineError(err) || err.kind === "unavailable" || err.kind === "retry") throw err;
      // The engine will not start it (bad variables, suspended or unknown definition, …): the requester learns
      // why through ProcessStartRefused, as a refused task interaction does.
      host.logger.info(
        `Engine connector ${host.applicationName}: start of ${data.processDefinitionId} requested by ${data.requestedBy} (request ${data.requestId}) refused: ${err.reason}`,
      );
      await host.send(
        "processDefinition.reportStartRefused",
        { processDefinitionId: data.processDefinitionId, requestId: data.requestId, requestedBy: data.requestedBy, reason: (err.reason || err.message).slice(0, 2000) },
        host.commandId("start-refused", event.eventId),
      );
      await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "refused", detail: { requestId: data.requestId, reason: err.reason } });
      return;
    }
  }
  await db.saveInteraction({ eventId: event.eventId, eventType: event.type, outcome: "performed", detail: { requestId: data.requestId, processInstanceId: instanceId } });
  try {
    const instance = await adapter.getProcessInstance(instanceId);
    if (instance && host.settings.collectProcessInstances) await host.observeInstance(instance);
    await host.refreshTasksOfInstance(instanceId);
  } catch (err) {
    host.recordError(`refresh of instance ${instanceId}`, err);
  }
}
