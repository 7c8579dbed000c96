// Service `task`: the task pool's command side. Engine connectors report facts (create, assign, complete, …);
// users express intents (claim, defer, request completion, …) that become interaction events for the owning
// application's connector. The rules live in domain/task.ts.
import type { ServiceSchema } from "moleculer";
import { AggregateMixin, type CommandDefinition, type CommandParams } from "../mixins/aggregate.mixin.ts";
import { taskDecider, taskStreamId } from "../domain/task.ts";
import { commandOf, correlations, id, isoDate, jsonObject, name, names, optionalJsonObject, optionalNames, optionalText, sourceReference } from "../lib/params.ts";

const optionalName = { ...name, optional: true, nullable: true };
const priority = { type: "number", integer: true, optional: true, nullable: true, convert: true };

const attributes = {
  businessKey: optionalName,
  name: { type: "string", max: 1000, optional: true, nullable: true },
  description: optionalText,
  formKey: optionalName,
  priority,
  owner: optionalName,
  dueDate: isoDate(),
  followUpDate: isoDate(),
  payload: optionalJsonObject,
  correlations,
};

function onTask<T extends string>(type: T, params: Record<string, unknown>, description: string, usuallyCreates = false): CommandDefinition<{ id: string } & CommandParams> {
  return {
    description,
    usuallyCreates,
    params: { $$strict: "remove", id, ...params },
    shardKey: "id",
    aggregateId: (p) => p.id,
    command: (p) => commandOf(type, p),
  };
}

const TaskService: ServiceSchema = {
  name: "task",
  mixins: [
    AggregateMixin({
      aggregate: "task",
      decider: taskDecider,
      streamId: taskStreamId,
      commands: {
        create: onTask(
          "CreateTask",
          {
            sourceReference,
            taskDefinitionKey: name,
            ...attributes,
            createTime: isoDate(),
            assignee: optionalName,
            candidateUsers: optionalNames,
            candidateGroups: optionalNames,
            enriched: { type: "boolean", optional: true, default: true },
          },
          "Reports a new user task (idempotent: a repeated create with the same data changes nothing).",
          true,
        ),
        assign: onTask("AssignTask", { assignee: { ...name, nullable: true } }, "Reports the task's assignee (null: unassigned)."),
        complete: onTask("CompleteTask", { assignee: optionalName }, "Reports that the engine completed the task."),
        delete: onTask("DeleteTask", { deleteReason: optionalText }, "Reports that the engine deleted the task."),
        updateAttributes: onTask(
          "UpdateTaskAttributes",
          {
            sourceReference: { ...sourceReference, optional: true, nullable: true },
            taskDefinitionKey: optionalName,
            ...attributes,
            enriched: { type: "boolean", default: false },
          },
          "Reports changed attributes; payload and correlations are replaced only when enriched.",
        ),
        addCandidateUsers: onTask("AddCandidateUsers", { candidateUsers: names }, "Adds candidate users."),
        deleteCandidateUsers: onTask("DeleteCandidateUsers", { candidateUsers: names }, "Removes candidate users."),
        addCandidateGroups: onTask("AddCandidateGroups", { candidateGroups: names }, "Adds candidate groups."),
        deleteCandidateGroups: onTask("DeleteCandidateGroups", { candidateGroups: names }, "Removes candidate groups."),
        claim: onTask("ClaimTask", { assignee: name }, "A user's intent to claim the task; the engine performs it."),
        unclaim: onTask("UnclaimTask", { username: optionalName }, "A user's intent to give the task back (409 when someone else holds it)."),
        defer: onTask("DeferTask", { followUpDate: isoDate({ optional: false }), username: optionalName }, "A user's intent to defer the task to a follow-up date (409 when someone else holds it)."),
        undefer: onTask("UndeferTask", { username: optionalName }, "A user's intent to clear the follow-up date (409 when someone else holds it)."),
        requestCompletion: onTask(
          "RequestTaskCompletion",
          { payload: { ...jsonObject, default: {} }, assignee: optionalName },
          "A user's intent to complete the task with a payload; the engine completes it.",
        ),
        reportInteractionRefused: onTask(
          "ReportTaskInteractionRefused",
          {
            interaction: { type: "enum", values: ["claim", "unclaim", "defer", "undefer", "complete"] },
            reason: { type: "string", min: 1, max: 2000 },
            username: optionalName,
          },
          "Reported by an engine connector when its engine refused an interaction; users see it.",
        ),
      },
    }),
  ],
};

export default TaskService;
