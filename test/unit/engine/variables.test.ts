import { describe, expect, it } from "vitest";
import {
  decodeTypedValue,
  decodeVariables,
  encodeTypedValue,
  encodeVariables,
  formatEngineDate,
  hasStructuredValues,
  parseEngineDate,
  plainValues,
  processVariableValueOf,
  shiftIsoDate,
} from "../../../domain/engine/variables.ts";

describe("engine dates", () => {
  it("parses the engine's format with any offset into ISO UTC with milliseconds", () => {
    expect(parseEngineDate("2026-11-23T19:59:36.120+0000")).toBe("2026-11-23T19:59:36.120Z");
    expect(parseEngineDate("2016-01-25T13:33:42.165+0100")).toBe("2016-01-25T12:33:42.165Z");
    expect(parseEngineDate("2016-01-25T13:33:42.165-02:30")).toBe("2016-01-25T16:03:42.165Z");
    expect(parseEngineDate("2026-11-23T19:59:36Z")).toBe("2026-11-23T19:59:36.000Z");
    expect(parseEngineDate("2026-11-23T19:59:36.1+0000")).toBe("2026-11-23T19:59:36.100Z");
    // No offset: read as UTC, so that no local time zone leaks into watermarks.
    expect(parseEngineDate("2026-11-23T19:59:36.120")).toBe("2026-11-23T19:59:36.120Z");
  });

  it("gives null for absent or unparseable dates", () => {
    for (const value of [null, undefined, "", "yesterday", 42, "2026-13-45T99:99:99.000+0000"]) expect(parseEngineDate(value)).toBeNull();
  });

  it("formats with a +0000 offset (the engine's Java pattern does not take Z) and round-trips", () => {
    expect(formatEngineDate("2026-11-23T19:59:36.120Z")).toBe("2026-11-23T19:59:36.120+0000");
    expect(formatEngineDate(new Date(Date.UTC(2027, 0, 1)))).toBe("2027-01-01T00:00:00.000+0000");
    expect(parseEngineDate(formatEngineDate("2026-05-01T10:00:00.001Z"))).toBe("2026-05-01T10:00:00.001Z");
    expect(() => formatEngineDate("soon")).toThrow(RangeError);
    expect(shiftIsoDate("2026-11-23T00:00:00.000Z", -1)).toBe("2026-11-22T23:59:59.999Z");
  });
});

describe("typed values", () => {
  it("decodes primitives, dates, Json and JSON-serialized objects; drops what has no JSON form", () => {
    expect(decodeTypedValue({ type: "Integer", value: 7 })).toEqual({ type: "Integer", value: 7 });
    expect(decodeTypedValue({ type: "Long", value: 10_000_000_000 })).toEqual({ type: "Long", value: 10_000_000_000 });
    expect(decodeTypedValue({ type: "Null", value: null })).toEqual({ type: "Null", value: null });
    expect(decodeTypedValue({ type: "Date", value: "2026-11-23T10:00:00.000+0100" })).toEqual({ type: "Date", value: "2026-11-23T09:00:00.000Z" });
    expect(decodeTypedValue({ type: "Json", value: '{"a":[1,2]}' })).toEqual({ type: "Json", value: { a: [1, 2] } });
    expect(decodeTypedValue({ type: "Object", value: '{"b":true}', valueInfo: { serializationDataFormat: "application/json", objectTypeName: "java.util.HashMap" } })).toEqual({
      type: "Object",
      value: { b: true },
    });
    expect(decodeTypedValue({ type: "Object", value: "rO0ABX…", valueInfo: { serializationDataFormat: "application/x-java-serialized-object" } })).toBeUndefined();
    expect(decodeTypedValue({ type: "Bytes", value: "AAEC" })).toBeUndefined();
    expect(decodeTypedValue({ type: "File", value: null, valueInfo: { filename: "a.pdf" } })).toBeUndefined();
    expect(decodeTypedValue({ type: "Xml", value: "<a/>" })).toEqual({ type: "Xml", value: "<a/>" });
    expect(decodeTypedValue({ type: "Json", value: "not json" })).toEqual({ type: "Json", value: "not json" });
  });

  it("decodes a variables map and its plain values", () => {
    const decoded = decodeVariables({ a: { type: "String", value: "x" }, f: { type: "File", value: null }, n: { type: "Double", value: 1.5 } });
    expect(decoded).toEqual({ a: { type: "String", value: "x" }, n: { type: "Double", value: 1.5 } });
    expect(plainValues(decoded)).toEqual({ a: "x", n: 1.5 });
    expect(decodeVariables(null)).toEqual({});
  });

  it("encodes JSON with the engine's types: Integer up to 32 bits, Long beyond, Double for fractions, Json or String for structures", () => {
    expect(encodeTypedValue(null)).toEqual({ type: "Null", value: null });
    expect(encodeTypedValue(true)).toEqual({ type: "Boolean", value: true });
    expect(encodeTypedValue("x")).toEqual({ type: "String", value: "x" });
    expect(encodeTypedValue(2 ** 31 - 1)).toEqual({ type: "Integer", value: 2 ** 31 - 1 });
    expect(encodeTypedValue(2 ** 31)).toEqual({ type: "Long", value: 2 ** 31 });
    expect(encodeTypedValue(-(2 ** 31) - 1)).toEqual({ type: "Long", value: -(2 ** 31) - 1 });
    expect(encodeTypedValue(0.5)).toEqual({ type: "Double", value: 0.5 });
    expect(encodeTypedValue({ a: 1 })).toEqual({ type: "Json", value: '{"a":1}' });
    expect(encodeTypedValue([1, "b"], "String")).toEqual({ type: "String", value: '[1,"b"]' });
    expect(encodeVariables({ a: 1, b: "c" })).toEqual({ a: { type: "Integer", value: 1 }, b: { type: "String", value: "c" } });
    expect(hasStructuredValues({ a: 1, b: null })).toBe(false);
    expect(hasStructuredValues({ a: [1] })).toBe(true);
  });

  it("maps engine values to the process variable aggregate's value shape", () => {
    expect(processVariableValueOf({ type: "String", value: "x" })).toEqual({ type: "PRIMITIVE", value: "x", valueType: null });
    expect(processVariableValueOf({ type: "Json", value: { a: 1 } })).toEqual({ type: "OBJECT", value: { a: 1 }, valueType: "Json" });
    expect(processVariableValueOf({ type: "Date", value: "2026-11-23T09:00:00.000Z" })).toEqual({ type: "TYPED", value: "2026-11-23T09:00:00.000Z", valueType: "Date" });
  });
});
