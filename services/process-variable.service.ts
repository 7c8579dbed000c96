// Service `processVariable`: the variables of process instances as engines report their changes.
// Rules: domain/process-variables.ts.
import type { ServiceSchema } from "moleculer";
import { AggregateMixin, type CommandParams } from "../mixins/aggregate.mixin.ts";
import { processVariablesDecider, processVariablesStreamId } from "../domain/process-variables.ts";
import { commandOf, id, name, sourceReference } from "../lib/params.ts";

const change = {
  type: "object",
  strict: "remove",
  props: {
    kind: { type: "enum", values: ["create", "update", "delete"] },
    variableInstanceId: id,
    variableName: name,
    revision: { type: "number", integer: true, min: 0, optional: true, convert: true },
    scopeActivityInstanceId: { type: "string", max: 300 },
    value: {
      type: "object",
      optional: true,
      strict: "remove",
      props: {
        type: { type: "enum", values: ["PRIMITIVE", "OBJECT", "TYPED"] },
        value: { type: "any", nullable: true, optional: true },
        valueType: { type: "string", optional: true, nullable: true },
      },
    },
  },
};

const ProcessVariableService: ServiceSchema = {
  name: "processVariable",
  mixins: [
    AggregateMixin({
      aggregate: "processVariables",
      decider: processVariablesDecider,
      streamId: processVariablesStreamId,
      commands: {
        change: {
          description: "Reports created, updated and deleted variables of one process instance.",
          params: { $$strict: "remove", sourceReference, variableChanges: { type: "array", min: 1, items: change } },
          shardKey: "sourceReference.instanceId",
          aggregateId: (p: { sourceReference: { instanceId: string } } & CommandParams) => p.sourceReference.instanceId,
          command: (p) => {
            const command = commandOf("ChangeProcessVariables", p);
            for (const c of command.variableChanges as { kind: string; revision?: number; value?: unknown }[]) {
              if (c.kind !== "delete" && (c.value === undefined || c.revision === undefined)) {
                // fastest-validator cannot express "required unless kind = delete"; the decider needs both.
                c.revision ??= 0;
                c.value ??= { type: "PRIMITIVE", value: null };
              }
            }
            return command;
          },
        },
      },
    }),
  ],
};

export default ProcessVariableService;
