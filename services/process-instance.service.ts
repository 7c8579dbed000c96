// Service `processInstance`: the life cycle of process instances as engines report it.
// Rules: domain/process-instance.ts.
import type { ServiceSchema } from "moleculer";
import { AggregateMixin, type CommandDefinition, type CommandParams } from "../mixins/aggregate.mixin.ts";
import { processInstanceDecider, processInstanceStreamId } from "../domain/process-instance.ts";
import { commandOf, id, name, optionalText, sourceReference } from "../lib/params.ts";

const optionalName = { ...name, optional: true, nullable: true };

function onInstance(type: string, params: Record<string, unknown>, description: string): CommandDefinition<{ processInstanceId: string } & CommandParams> {
  return {
    description,
    usuallyCreates: type === "StartProcessInstance",
    params: { $$strict: "remove", processInstanceId: id, sourceReference, ...params },
    shardKey: "processInstanceId",
    aggregateId: (p) => p.processInstanceId,
    command: (p) => commandOf(type, p),
  };
}

const ProcessInstanceService: ServiceSchema = {
  name: "processInstance",
  mixins: [
    AggregateMixin({
      aggregate: "processInstance",
      decider: processInstanceDecider,
      streamId: processInstanceStreamId,
      commands: {
        start: onInstance(
          "StartProcessInstance",
          { businessKey: optionalName, startUserId: optionalName, superInstanceId: optionalName, startActivityId: optionalName },
          "Reports a started process instance.",
        ),
        finish: onInstance(
          "FinishProcessInstance",
          { businessKey: optionalName, superInstanceId: optionalName, endActivityId: optionalName },
          "Reports a process instance that reached its end.",
        ),
        cancel: onInstance(
          "CancelProcessInstance",
          { businessKey: optionalName, superInstanceId: optionalName, endActivityId: optionalName, deleteReason: optionalText },
          "Reports a process instance terminated from outside.",
        ),
        suspend: onInstance("SuspendProcessInstance", {}, "Reports a suspended process instance."),
        resume: onInstance("ResumeProcessInstance", {}, "Reports a resumed process instance."),
      },
    }),
  ],
};

export default ProcessInstanceService;
