// Service `processDefinition`: the catalogue of startable processes, and the request to start one, which the
// owning application's connector performs. Rules: domain/process-definition.ts.
import type { ServiceSchema } from "moleculer";
import { AggregateMixin } from "../mixins/aggregate.mixin.ts";
import { processDefinitionDecider, processDefinitionStreamId } from "../domain/process-definition.ts";
import { commandOf, id, jsonObject, name, names, optionalText } from "../lib/params.ts";

const optionalName = { ...name, optional: true, nullable: true };

const ProcessDefinitionService: ServiceSchema = {
  name: "processDefinition",
  mixins: [
    AggregateMixin({
      aggregate: "processDefinition",
      decider: processDefinitionDecider,
      streamId: processDefinitionStreamId,
      commands: {
        register: {
          description: "Registers (or re-registers) a process definition; identical re-registration changes nothing.",
          params: {
            $$strict: "remove",
            processDefinitionId: id,
            processDefinitionKey: name,
            processDefinitionVersion: { type: "number", integer: true, min: 0, convert: true },
            applicationName: name,
            processName: { type: "string", max: 1000 },
            processVersionTag: optionalName,
            processDescription: optionalText,
            formKey: optionalName,
            startableFromTasklist: { type: "boolean", default: true },
            candidateStarterUsers: { ...names, default: [] },
            candidateStarterGroups: { ...names, default: [] },
          },
          shardKey: "processDefinitionId",
          aggregateId: (p) => p.processDefinitionId,
          command: (p) => commandOf("RegisterProcessDefinition", p),
        },
        requestStart: {
          description: "A user's request to start a process; the owning application's connector starts it.",
          params: {
            $$strict: "remove",
            processDefinitionId: id,
            businessKey: optionalName,
            variables: { ...jsonObject, default: {} },
            requestedBy: name,
            requestId: id,
          },
          shardKey: "processDefinitionId",
          aggregateId: (p) => p.processDefinitionId,
          command: (p) => commandOf("RequestProcessStart", p),
        },
      },
    }),
  ],
};

export default ProcessDefinitionService;
