import { describe, expect, it } from "vitest";
import { advanceWatermark, evictBefore, readFrom, rowsToHandle } from "../../../engine/connector/change-window.ts";

const row = (key: string, time: string) => ({ key, time });

describe("change window", () => {
  it("reads from the watermark minus the overlap, or from the beginning without one", () => {
    expect(readFrom(null, 10_000)).toBeNull();
    expect(readFrom("2026-11-23T10:00:10.000Z", 10_000)).toBe("2026-11-23T10:00:00.000Z");
  });

  it("handles each row once, oldest first, and skips what the window saw already", () => {
    const rows = [row("b@2", "2026-11-23T10:00:02.000Z"), row("a@1", "2026-11-23T10:00:01.000Z"), row("c@2", "2026-11-23T10:00:02.000Z"), row("a@1", "2026-11-23T10:00:01.000Z")];
    expect(rowsToHandle(rows, new Set()).map((r) => r.key)).toEqual(["a@1", "b@2", "c@2"]);
    expect(rowsToHandle(rows, new Set(["b@2"])).map((r) => r.key)).toEqual(["a@1", "c@2"]);
  });

  it("moves the watermark to the newest handled server time, never back, and not past a failed row", () => {
    const handled = [row("a", "2026-11-23T10:00:01.000Z"), row("b", "2026-11-23T10:00:03.000Z")];
    expect(advanceWatermark(null, handled)).toBe("2026-11-23T10:00:03.000Z");
    expect(advanceWatermark("2026-11-23T10:00:05.000Z", handled)).toBe("2026-11-23T10:00:05.000Z");
    expect(advanceWatermark(null, [])).toBeNull();
    expect(advanceWatermark(null, handled, "2026-11-23T10:00:02.000Z")).toBe("2026-11-23T10:00:01.000Z");
    expect(advanceWatermark("2026-11-23T09:00:00.000Z", handled, "2026-11-23T10:00:01.000Z")).toBe("2026-11-23T09:00:00.000Z");
  });

  it("evicts de-duplication entries only behind the reach of the next read", () => {
    expect(evictBefore(null, 1000)).toBeNull();
    const watermark = "2026-11-23T10:00:10.000Z";
    const bound = evictBefore(watermark, 10_000)!;
    expect(bound < readFrom(watermark, 10_000)!).toBe(true);
  });
});
