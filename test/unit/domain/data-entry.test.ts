import { describe, expect, it } from "vitest";
import * as harness from "../../decider-harness.ts";
import { domainErrorOf } from "../../decider-harness.ts";
import {
  applyAuthorizationChanges,
  dataEntryDecider,
  dataEntryId,
  dataEntryStreamId,
  type CreateOrUpdateDataEntry,
  type DataEntryCommand,
  type DataEntryEvent,
  type DataEntryState,
  type DeletionStrategy,
  type ProtocolEntry,
} from "../../../domain/data-entry.ts";


const lax = dataEntryDecider({ deletionStrategy: "lax" });
const strict = dataEntryDecider({ deletionStrategy: "strict" });
const deciders = { lax, strict } as const;

const stateAfter = (events: DataEntryEvent[]): DataEntryState => harness.stateAfter(lax, events);
/** Runs commands one after another on the strategy's decider; returns all events. */
const run = (strategy: DeletionStrategy, ...commands: DataEntryCommand[]): DataEntryEvent[] => harness.decideAll(deciders[strategy], commands);



const entryType = "io.example.Request";
const entryId = "R-1";

const upsert = (overrides: Partial<CreateOrUpdateDataEntry> = {}): CreateOrUpdateDataEntry => ({
  type: "CreateOrUpdateDataEntry",
  entryType,
  entryId,
  typeName: "Approval Request",
  applicationName: "approval-app",
  name: "Request 1",
  state: { processingType: "IN_PROGRESS", state: "Submitted" },
  payload: { amount: 100 },
  authorizationChanges: [
    { kind: "AddUser", name: "kermit" },
    { kind: "AddGroup", name: "muppetshow" },
  ],
  modification: { time: "2024-05-01T10:00:00.000Z", username: "kermit", log: "Request created", logNotes: "by form" },
  ...overrides,
});

const remove = (time = "2024-05-03T10:00:00.000Z"): DataEntryCommand => ({
  type: "DeleteDataEntry",
  entryType,
  entryId,
  modification: { time, username: "admin" },
});

const anonymize = (overrides: Partial<Extract<DataEntryCommand, { type: "AnonymizeDataEntry" }>> = {}): DataEntryCommand => ({
  type: "AnonymizeDataEntry",
  entryType,
  entryId,
  anonymizedUsername: "anonymous",
  excludedUsernames: ["SYSTEM"],
  modification: { time: "2024-05-04T10:00:00.000Z", username: "admin", log: "anonymized" },
  ...overrides,
});

const protocolLine = (overrides: Partial<ProtocolEntry>): ProtocolEntry => ({
  time: "2024-05-01T10:00:00.000Z",
  processingType: "IN_PROGRESS",
  state: "Submitted",
  username: "kermit",
  logMessage: "Request created",
  logDetails: "by form",
  ...overrides,
});

describe("identity", () => {
  it("is entryType#entryId, and the stream is dataEntry-<identity>", () => {
    expect(dataEntryId("a.B", "7")).toBe("a.B#7");
    expect(dataEntryStreamId("a.B", "7")).toBe("dataEntry-a.B#7");
  });
});

describe("create or update", () => {
  it("creates a new entry with every field explicit", () => {
    expect(run("lax", upsert({ payload: undefined, modification: { time: "2024-05-01T10:00:00.000Z" } }))).toEqual([
      {
        type: "DataEntryCreated",
        data: {
          entryType,
          entryId,
          type: "Approval Request",
          applicationName: "approval-app",
          name: "Request 1",
          description: null,
          state: { processingType: "IN_PROGRESS", state: "Submitted" },
          payload: {},
          correlations: {},
          formKey: null,
          authorizationChanges: [
            { kind: "AddUser", name: "kermit" },
            { kind: "AddGroup", name: "muppetshow" },
          ],
          modification: { time: "2024-05-01T10:00:00.000Z", username: null, log: null, logNotes: null },
        },
      },
    ]);
  });

  it("updates an active entry", () => {
    const events = run("lax", upsert(), upsert({ name: "Request 1 (amended)" }));
    expect(events.map((e) => e.type)).toEqual(["DataEntryCreated", "DataEntryUpdated"]);
    expect(events[1]!.data).toMatchObject({ name: "Request 1 (amended)" });
  });

  it.each(["lax", "strict"] as const)("updates an active entry under %s deletion too", (strategy) => {
    expect(run(strategy, upsert(), upsert()).map((e) => e.type)).toEqual(["DataEntryCreated", "DataEntryUpdated"]);
  });

  it("the decider defaults to lax deletion", () => {
    const decider = dataEntryDecider();
    const state = stateAfter(run("lax", upsert(), remove()));
    expect(decider.decide(upsert(), state).map((e) => e.type)).toEqual(["DataEntryCreated"]);
  });
});

describe("evolve: fields, authorizations, protocol", () => {
  it("a created entry has the event's fields, the authorizations and one protocol line", () => {
    const state = stateAfter(run("lax", upsert({ description: "d", formKey: "f", correlations: { T: "1" } })));
    expect(state).toEqual({
      status: "active",
      entry: {
        entryType,
        entryId,
        type: "Approval Request",
        applicationName: "approval-app",
        name: "Request 1",
        description: "d",
        state: { processingType: "IN_PROGRESS", state: "Submitted" },
        payload: { amount: 100 },
        correlations: { T: "1" },
        formKey: "f",
        authorizedUsers: ["kermit"],
        authorizedGroups: ["muppetshow"],
        protocol: [protocolLine({})],
      },
    });
  });

  it("an update replaces the fields and applies authorization deltas to the existing sets", () => {
    const state = stateAfter(
      run(
        "lax",
        upsert(),
        upsert({
          name: "renamed",
          state: { processingType: "COMPLETED", state: "Approved" },
          payload: { amount: 200 },
          authorizationChanges: [
            { kind: "AddUser", name: "piggy" },
            { kind: "AddUser", name: "kermit" },
            { kind: "RemoveGroup", name: "muppetshow" },
            { kind: "AddGroup", name: "avengers" },
          ],
          modification: { time: "2024-05-02T10:00:00.000Z", username: "piggy", log: "Approved" },
        }),
      ),
    );
    expect(state.entry).toMatchObject({
      name: "renamed",
      state: { processingType: "COMPLETED", state: "Approved" },
      payload: { amount: 200 },
      authorizedUsers: ["kermit", "piggy"],
      authorizedGroups: ["avengers"],
    });
    expect(state.entry!.protocol).toEqual([
      protocolLine({}),
      {
        time: "2024-05-02T10:00:00.000Z",
        processingType: "COMPLETED",
        state: "Approved",
        username: "piggy",
        logMessage: "Approved",
        logDetails: null,
      },
    ]);
  });

  it("applies deltas in order, keeps sets sorted and duplicate-free, and removing an absent name is harmless", () => {
    expect(
      applyAuthorizationChanges(["zoe"], ["g"], [
        { kind: "AddUser", name: "bob" },
        { kind: "AddUser", name: "bob" },
        { kind: "RemoveUser", name: "zoe" },
        { kind: "AddUser", name: "zoe" },
        { kind: "RemoveUser", name: "nobody" },
        { kind: "AddUser", name: "alice" },
        { kind: "RemoveUser", name: "alice" },
        { kind: "RemoveGroup", name: "g" },
        { kind: "AddGroup", name: "h" },
        { kind: "AddGroup", name: "a" },
      ]),
    ).toEqual({ authorizedUsers: ["bob", "zoe"], authorizedGroups: ["a", "h"] });
    expect(applyAuthorizationChanges(["zoe"], [], [{ kind: "AddUser", name: "bob" }]).authorizedUsers).toEqual(["bob", "zoe"]);
  });

  it("does not append an exact duplicate of the last protocol line", () => {
    const state = stateAfter(run("lax", upsert(), upsert(), upsert()));
    expect(state.entry!.protocol).toEqual([protocolLine({})]);
  });

  it("appends a line that differs only in time, and a repeat of an earlier (not the last) line", () => {
    const second = upsert({ modification: { time: "2024-05-02T10:00:00.000Z", username: "piggy" } });
    const state = stateAfter(run("lax", upsert(), second, upsert()));
    expect(state.entry!.protocol).toHaveLength(3);
  });

  it("delete keeps the entry, marks it deleted, records the deleted state and a protocol line", () => {
    const state = stateAfter(run("lax", upsert(), remove()));
    expect(state.status).toBe("deleted");
    expect(state.entry!.state).toEqual({ processingType: "DELETED", state: "deleted" });
    expect(state.entry!.protocol.at(-1)).toEqual({
      time: "2024-05-03T10:00:00.000Z",
      processingType: "DELETED",
      state: "deleted",
      username: "admin",
      logMessage: null,
      logDetails: null,
    });
    expect(state.entry!.authorizedUsers).toEqual(["kermit"]);
  });

  it("ignores delete and anonymize events on a stream without its creation", () => {
    const initial = lax.initialState;
    const deleted: DataEntryEvent = {
      type: "DataEntryDeleted",
      data: { entryType, entryId, state: { processingType: "DELETED", state: "deleted" }, modification: { time: "t", username: null, log: null, logNotes: null } },
    };
    expect(lax.evolve(initial, deleted)).toBe(initial);
    const anonymized: DataEntryEvent = {
      type: "DataEntryAnonymized",
      data: { entryType, entryId, anonymizedUsername: "a", excludedUsernames: [], modification: { time: "t", username: null, log: null, logNotes: null } },
    };
    expect(lax.evolve(initial, anonymized)).toBe(initial);
  });
});

describe("delete", () => {
  it("emits DataEntryDeleted with the default deleted state", () => {
    expect(run("lax", upsert(), remove()).at(-1)).toEqual({
      type: "DataEntryDeleted",
      data: {
        entryType,
        entryId,
        state: { processingType: "DELETED", state: "deleted" },
        modification: { time: "2024-05-03T10:00:00.000Z", username: "admin", log: null, logNotes: null },
      },
    });
  });

  it("takes an explicit state", () => {
    const command: DataEntryCommand = {
      type: "DeleteDataEntry",
      entryType,
      entryId,
      modification: { time: "2024-05-03T10:00:00.000Z" },
      state: { processingType: "CANCELLED", state: "Withdrawn" },
    };
    expect(run("lax", upsert(), command).at(-1)!.data).toMatchObject({ state: { processingType: "CANCELLED", state: "Withdrawn" } });
  });

  it.each(["lax", "strict"] as const)("of an entry never created → NOT_FOUND (%s)", (strategy) => {
    const error = domainErrorOf(() => deciders[strategy].decide(remove(), deciders[strategy].initialState));
    expect(error.kind).toBe("NOT_FOUND");
    expect(error.details).toMatchObject({ id: "io.example.Request#R-1" });
  });
});

describe("lax deletion", () => {
  it("an update after delete starts the entry afresh with DataEntryCreated", () => {
    const events = run(
      "lax",
      upsert(),
      remove(),
      upsert({
        authorizationChanges: [{ kind: "AddUser", name: "piggy" }],
        modification: { time: "2024-05-05T10:00:00.000Z", username: "piggy" },
      }),
    );
    expect(events.map((e) => e.type)).toEqual(["DataEntryCreated", "DataEntryDeleted", "DataEntryCreated"]);
    const state = stateAfter(events);
    expect(state.status).toBe("active");
    // Fresh: authorizations and protocol of the deleted life are gone.
    expect(state.entry!.authorizedUsers).toEqual(["piggy"]);
    expect(state.entry!.authorizedGroups).toEqual([]);
    expect(state.entry!.protocol).toHaveLength(1);
    expect(state.entry!.protocol[0]!.username).toBe("piggy");
  });

  it("delete of a deleted entry yields nothing", () => {
    expect(run("lax", upsert(), remove(), remove("2024-06-01T00:00:00.000Z")).map((e) => e.type)).toEqual([
      "DataEntryCreated",
      "DataEntryDeleted",
    ]);
  });

  it("anonymize of a deleted entry yields nothing", () => {
    expect(run("lax", upsert(), remove(), anonymize()).map((e) => e.type)).toEqual(["DataEntryCreated", "DataEntryDeleted"]);
  });

  it("anonymize of an entry never created → NOT_FOUND", () => {
    expect(domainErrorOf(() => lax.decide(anonymize(), lax.initialState)).kind).toBe("NOT_FOUND");
  });

  it("a re-created entry can be deleted again", () => {
    expect(run("lax", upsert(), remove(), upsert(), remove()).map((e) => e.type)).toEqual([
      "DataEntryCreated",
      "DataEntryDeleted",
      "DataEntryCreated",
      "DataEntryDeleted",
    ]);
  });
});

describe("strict deletion", () => {
  const deletedState = () => stateAfter(run("strict", upsert(), remove()));

  it.each([
    ["update", upsert()],
    ["delete", remove("2024-06-01T00:00:00.000Z")],
    ["anonymize", anonymize()],
  ] as const)("%s after delete → CONFLICT", (_name, command) => {
    const error = domainErrorOf(() => strict.decide(command, deletedState()));
    expect(error.kind).toBe("CONFLICT");
    expect(error.details).toMatchObject({ id: "io.example.Request#R-1", deletionStrategy: "strict" });
  });

  it("anonymize of an entry never created → NOT_FOUND, not CONFLICT", () => {
    expect(domainErrorOf(() => strict.decide(anonymize(), strict.initialState)).kind).toBe("NOT_FOUND");
  });

  it("create, update, anonymize and delete of a live entry work as under lax", () => {
    expect(run("strict", upsert(), upsert({ name: "x" }), anonymize(), remove()).map((e) => e.type)).toEqual([
      "DataEntryCreated",
      "DataEntryUpdated",
      "DataEntryAnonymized",
      "DataEntryDeleted",
    ]);
  });
});

describe("anonymize", () => {
  const history = () =>
    run(
      "lax",
      upsert({
        authorizationChanges: [
          { kind: "AddUser", name: "kermit" },
          { kind: "AddUser", name: "SYSTEM" },
          { kind: "AddUser", name: "piggy" },
          { kind: "AddGroup", name: "muppetshow" },
        ],
      }),
      upsert({ modification: { time: "2024-05-02T10:00:00.000Z", username: "SYSTEM", log: "auto" } }),
      upsert({ modification: { time: "2024-05-02T11:00:00.000Z", username: null, log: "nobody" } }),
      upsert({ modification: { time: "2024-05-02T12:00:00.000Z", username: "piggy", log: "Approved" } }),
    );
  const anonymized = () => {
    const events = history();
    return stateAfter([...events, ...lax.decide(anonymize(), stateAfter(events))]);
  };

  it("emits DataEntryAnonymized with sorted, duplicate-free excluded usernames", () => {
    const events = run("lax", upsert(), anonymize({ excludedUsernames: ["SYSTEM", "admin", "SYSTEM"] }));
    expect(events.at(-1)).toEqual({
      type: "DataEntryAnonymized",
      data: {
        entryType,
        entryId,
        anonymizedUsername: "anonymous",
        excludedUsernames: ["SYSTEM", "admin"],
        modification: { time: "2024-05-04T10:00:00.000Z", username: "admin", log: "anonymized", logNotes: null },
      },
    });
  });

  it("replaces protocol usernames except excluded ones; a line without a user stays without", () => {
    const state = anonymized();
    expect(state.entry!.protocol.map((line) => line.username)).toEqual(["anonymous", "SYSTEM", null, "anonymous", "anonymous"]);
    expect(JSON.stringify(state.entry!.protocol)).not.toMatch(/kermit|piggy|admin/);
  });

  it("keeps everything else in the protocol lines", () => {
    const state = anonymized();
    expect(state.entry!.protocol[0]).toEqual(protocolLine({ username: "anonymous" }));
  });

  it("removes every user authorization except excluded usernames, and keeps groups", () => {
    const state = anonymized();
    expect(state.entry!.authorizedUsers).toEqual(["SYSTEM"]);
    expect(state.entry!.authorizedGroups).toEqual(["muppetshow"]);
  });

  it("appends its own protocol line with the anonymized username and the entry's current state", () => {
    const state = anonymized();
    expect(state.entry!.protocol.at(-1)).toEqual({
      time: "2024-05-04T10:00:00.000Z",
      processingType: "IN_PROGRESS",
      state: "Submitted",
      username: "anonymous",
      logMessage: "anonymized",
      logDetails: null,
    });
  });

  it("keeps the anonymizing user's name when it is excluded", () => {
    const events = run("lax", upsert(), anonymize({ modification: { time: "2024-05-04T10:00:00.000Z", username: "SYSTEM" } }));
    expect(stateAfter(events).entry!.protocol.map((l) => l.username)).toEqual(["anonymous", "SYSTEM"]);
  });

  it("does not change status, fields or payload", () => {
    const before = stateAfter(run("lax", upsert()));
    const after = stateAfter(run("lax", upsert(), anonymize()));
    expect(after.status).toBe("active");
    expect({ ...after.entry, authorizedUsers: [], protocol: [] }).toEqual({ ...before.entry, authorizedUsers: [], protocol: [] });
  });

  it("an update after anonymize appends normally (later names are not anonymized retroactively)", () => {
    const events = run("lax", upsert(), anonymize(), upsert({ modification: { time: "2024-06-01T00:00:00.000Z", username: "gonzo" } }));
    expect(stateAfter(events).entry!.protocol.map((l) => l.username)).toEqual(["anonymous", "anonymous", "gonzo"]);
  });

  it("anonymizing twice appends only one line when the modification is repeated", () => {
    const events = run("lax", upsert(), anonymize(), anonymize());
    expect(events.map((e) => e.type)).toEqual(["DataEntryCreated", "DataEntryAnonymized", "DataEntryAnonymized"]);
    expect(stateAfter(events).entry!.protocol).toHaveLength(2);
  });
});
