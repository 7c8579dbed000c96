import { describe, expect, it } from "vitest";
import { errorKindOf, OperatonClient } from "../../../engine/operaton/operaton-client.ts";
import { isEngineError } from "../../../engine/connector/engine-adapter.ts";

describe("Operaton error answers", () => {
  it("maps the engine's exception types before HTTP statuses", () => {
    expect(errorKindOf(500, { type: "TaskAlreadyClaimedException", message: "Task 'x' is already claimed by someone else." })).toBe("conflict");
    expect(errorKindOf(500, { type: "OptimisticLockingException", message: "…" })).toBe("retry");
    expect(errorKindOf(404, { type: "InvalidRequestException", message: "No matching task with id x" })).toBe("gone");
    expect(errorKindOf(500, { type: "NullValueException", message: "Cannot find task with id x: task is null" })).toBe("gone");
    expect(errorKindOf(500, { type: "RestException", message: "Cannot find task with id x" })).toBe("gone");
    expect(errorKindOf(400, { type: "InvalidRequestException", message: "Unsupported value type 'Json'" })).toBe("invalid");
    expect(errorKindOf(503, null)).toBe("unavailable");
    expect(errorKindOf(500, { type: "ProcessEngineException", message: "boom" })).toBe("failed");
  });

  it("encodes query parameters (a + in an offset becomes %2B) and reports an unreachable engine as unavailable", async () => {
    const client = new OperatonClient({ baseUrl: "http://127.0.0.1:9/engine-rest/", timeoutMs: 500, readRetries: 0 });
    expect(client.url("/task", { updatedAfter: "2026-11-23T10:00:00.000+0000", keys: ["a", "b"], none: null })).toBe(
      "http://127.0.0.1:9/engine-rest/task?updatedAfter=2026-11-23T10%3A00%3A00.000%2B0000&keys=a%2Cb",
    );
    const failure = await client.get("/version").catch((err) => err);
    expect(isEngineError(failure, "unavailable")).toBe(true);
  });
});
