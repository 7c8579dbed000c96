// Service `processDefinition`: the catalogue of startable processes, and the request to start one, which the
// owning application's connector performs, or reports refused. Rules: domain/process-definition.ts.
import type { Context, ServiceSettingSchema } from "moleculer";
import { AggregateMixin, type AggregateLocals, type AggregateMethods, type CommandParams, type CommandResult } from "../mixins/aggregate.mixin.ts";
import { processDefinitionDecider, processDefinitionStreamId, startRequestOf, type ProcessDefinitionCommand, type ProcessDefinitionState } from "../domain/process-definition.ts";
import { commandOf, id, jsonObject, name, names, optionalText } from "../lib/params.ts";
import { AGGREGATE_SHARD } from "../lib/strategies.ts";
import { defineService } from "../lib/schema.ts";

const optionalName = { ...name, optional: true, nullable: true };

type DefinitionParams = { processDefinitionId: string } & CommandParams;
const aggregateId = (p: DefinitionParams) => p.processDefinitionId;

const ProcessDefinitionService = defineService<
  ServiceSettingSchema,
  AggregateMethods<ProcessDefinitionCommand, ProcessDefinitionState>,
  AggregateLocals<ProcessDefinitionState>
>({
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
            startsThroughForm: { type: "boolean", optional: true, nullable: true },
            startableFromTasklist: { type: "boolean", default: true },
            candidateStarterUsers: { ...names, default: [] },
            candidateStarterGroups: { ...names, default: [] },
          },
          shardKey: "processDefinitionId",
          aggregateId,
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
          aggregateId,
          command: (p) => commandOf("RequestProcessStart", p),
        },
        reportStartRefused: {
          description: "Reported by an engine connector when its engine refused to start a requested instance; the requester sees it.",
          params: {
            $$strict: "remove",
            processDefinitionId: id,
            requestId: id,
            requestedBy: name,
            reason: { type: "string", min: 1, max: 2000 },
          },
          shardKey: "processDefinitionId",
          aggregateId,
          command: (p) => commandOf("ReportProcessStartRefused", p),
        },
      },
    }),
  ],

  actions: {
    // What became of a start request: requested (the application has it) or refused (with the engine's
    // reason); null when the definition does not remember it.
    startRequest: {
      params: { processDefinitionId: id, requestId: id },
      // The home node of the definition holds its folded state; ask it.
      strategy: AGGREGATE_SHARD,
      strategyOptions: { shardKey: "processDefinitionId" },
      async handler(ctx: Context<{ processDefinitionId: string; requestId: string }>) {
        // loadAggregate comes from the AggregateMixin.
        const { state } = await this.loadAggregate(ctx.params.processDefinitionId, ctx);
        const record = startRequestOf(state, ctx.params.requestId);
        return record && state.definition
          ? { ...record, processDefinitionId: state.definition.processDefinitionId, processDefinitionKey: state.definition.processDefinitionKey, applicationName: state.definition.applicationName }
          : null;
      },
    },
  },

  hooks: {
    after: {
      // Gateways push the refusal to the requester's live streams at once (GET /api/events); the event store
      // keeps it, and GET /api/process-starts/… answers it later.
      reportStartRefused(ctx: Context<Record<string, string>>, result: CommandResult) {
        if (result.events.includes("ProcessStartRefused")) {
          void this.broker.broadcast("processDefinition.startRefused", {
            processDefinitionId: ctx.params.processDefinitionId,
            requestId: ctx.params.requestId,
            requestedBy: ctx.params.requestedBy,
            reason: ctx.params.reason,
            globalPosition: result.globalPosition,
          });
        }
        return result;
      },
    },
  },
});

export default ProcessDefinitionService;
