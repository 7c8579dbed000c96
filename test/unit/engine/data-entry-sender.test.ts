import { describe, expect, it } from "vitest";
import { dataEntryAnonymization, dataEntryChange, dataEntryDeletion } from "../../../domain/engine/data-entry-sender.ts";

const modification = { time: "2026-11-23T10:00:00.000Z", username: "kermit", log: "Submitted" };

describe("data-entry sender", () => {
  it("fills Polyflow's defaults: name = id, type = entry type, state UNDEFINED, the modifying user authorized", () => {
    const plan = dataEntryChange("example", { entryType: "io.example.Request", entryId: "42", payload: { amount: 1 }, modification });
    expect(plan.action).toBe("dataEntry.createOrUpdate");
    expect(plan.params).toMatchObject({
      entryType: "io.example.Request",
      entryId: "42",
      type: "io.example.Request",
      name: "42",
      applicationName: "example",
      state: { processingType: "UNDEFINED", state: "" },
      authorizationChanges: [{ kind: "AddUser", name: "kermit" }],
      payload: { amount: 1 },
    });
    expect((dataEntryChange("example", { entryType: "t", entryId: "1", modification: { time: modification.time } }).params as any).authorizationChanges).toEqual([]);
  });

  it("derives the command id from the content: equal resends share it, a new modification does not", () => {
    const a = dataEntryChange("example", { entryType: "t", entryId: "1", modification });
    expect(dataEntryChange("example", { entryType: "t", entryId: "1", modification: { ...modification } }).params.commandId).toBe(a.params.commandId);
    expect(dataEntryChange("example", { entryType: "t", entryId: "1", modification: { ...modification, time: "2026-11-23T10:00:01.000Z" } }).params.commandId).not.toBe(a.params.commandId);
    expect(a.params.commandId.length).toBeLessThanOrEqual(300);
  });

  it("builds deletions and anonymizations", () => {
    expect(dataEntryDeletion("example", { entryType: "t", entryId: "1", modification })).toMatchObject({ action: "dataEntry.delete", params: { state: null } });
    expect(dataEntryAnonymization("example", { entryType: "t", entryId: "1", anonymizedUsername: "***", modification })).toMatchObject({
      action: "dataEntry.anonymize",
      params: { excludedUsernames: [], anonymizedUsername: "***" },
    });
  });
});
