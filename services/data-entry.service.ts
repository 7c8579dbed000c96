// Service `dataEntry`: the data pool's command side — the business objects ("data entries") that process
// applications report, with their state, protocol and authorizations. Rules: domain/data-entry.ts.
import type { ServiceSchema } from "moleculer";
import { AggregateMixin, type CommandDefinition, type CommandParams } from "../mixins/aggregate.mixin.ts";
import { dataEntryDecider, dataEntryId, dataEntryStreamId, type DeletionStrategy } from "../domain/data-entry.ts";
import { commandOf, correlations, isoDate, name, names, optionalJsonObject, optionalText } from "../lib/params.ts";
import { readEnvironment } from "../lib/env.ts";

const processingState = {
  type: "object",
  strict: "remove",
  props: {
    processingType: { type: "enum", values: ["PRELIMINARY", "IN_PROGRESS", "COMPLETED", "CANCELLED", "UNDEFINED", "DELETED"] },
    state: { type: "string", max: 300 },
  },
};

const modification = {
  type: "object",
  strict: "remove",
  props: {
    time: isoDate({ optional: false }),
    username: { ...name, optional: true, nullable: true },
    log: { ...optionalText },
    logNotes: { ...optionalText },
  },
};

const identity = { entryType: name, entryId: name };

type EntryParams = { entryType: string; entryId: string } & CommandParams;

function onEntry(definition: Omit<CommandDefinition<EntryParams>, "shardKey" | "aggregateId">): CommandDefinition<EntryParams> {
  return {
    ...definition,
    params: { $$strict: "remove", ...identity, ...definition.params },
    shardKey: "entryId",
    aggregateId: (p) => dataEntryId(p.entryType, p.entryId),
  };
}

const deletionStrategy: DeletionStrategy = readEnvironment().dataEntryDeletionStrategy;

const DataEntryService: ServiceSchema = {
  name: "dataEntry",
  mixins: [
    AggregateMixin({
      aggregate: "dataEntry",
      decider: dataEntryDecider({ deletionStrategy }),
      streamId: (aggregateId) => {
        const [entryType, ...rest] = aggregateId.split("#");
        return dataEntryStreamId(entryType!, rest.join("#"));
      },
      commands: {
        createOrUpdate: onEntry({
          description: "Creates the data entry or updates it; authorization changes are deltas.",
          params: {
            type: name,
            applicationName: name,
            name: { type: "string", max: 1000 },
            description: optionalText,
            state: processingState,
            payload: optionalJsonObject,
            correlations,
            formKey: { ...name, optional: true, nullable: true },
            authorizationChanges: {
              type: "array",
              optional: true,
              nullable: true,
              items: {
                type: "object",
                strict: "remove",
                props: { kind: { type: "enum", values: ["AddUser", "RemoveUser", "AddGroup", "RemoveGroup"] }, name },
              },
            },
            modification,
          },
          // The entry's human-readable `type` is `typeName` in the command, whose own `type` names the command.
          command: (p) => {
            const { commandId: _commandId, type: typeName, ...rest } = p;
            return { ...rest, type: "CreateOrUpdateDataEntry", typeName };
          },
        }),
        delete: onEntry({
          description: "Deletes the data entry (lax: it can be created again; strict: it cannot).",
          params: { modification, state: { ...processingState, optional: true, nullable: true } },
          command: (p) => commandOf("DeleteDataEntry", p),
        }),
        anonymize: onEntry({
          description: "Replaces user names in the protocol and removes user authorizations, except the excluded names.",
          params: { anonymizedUsername: name, excludedUsernames: { ...names, default: [] }, modification },
          command: (p) => commandOf("AnonymizeDataEntry", p),
        }),
      },
    }),
  ],
};

export default DataEntryService;
