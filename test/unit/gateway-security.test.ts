// The shared front door's pure parts (gateway/gateway-security.ts, domain/calendar.ts, the filter grammar): issue 13.
import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { errorResponse, findInputProblem, gatewaySecurityFromEnv, MAX_DEPTH, StreamLimiter } from "../../gateway/gateway-security.ts";
import { isCalendarDateTime } from "../../domain/calendar.ts";
import { FilterError, parseFilters, parseSort } from "../../view/filters.ts";
import { isoDate } from "../../lib/params.ts";

describe("issue 13, defect 3: a configured JWT key turns header authentication off", () => {
  it("JWT_PUBLIC_KEY_FILE alone: header off; AUTH_HEADER_ENABLED=true keeps it on; no key: on", () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-"));
    const file = join(dir, "key.pem");
    writeFileSync(file, generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } }).publicKey);
    expect(gatewaySecurityFromEnv({ JWT_PUBLIC_KEY_FILE: file })).toMatchObject({ headerEnabled: false, jwt: { mode: "RS256" } });
    expect(gatewaySecurityFromEnv({ JWT_PUBLIC_KEY_FILE: file, AUTH_HEADER_ENABLED: "true" }).headerEnabled).toBe(true);
    expect(gatewaySecurityFromEnv({ JWT_JWKS_URL: "https://idp.example/jwks" })).toMatchObject({ headerEnabled: false, jwt: { mode: "JWKS" } });
    expect(gatewaySecurityFromEnv({})).toMatchObject({ headerEnabled: true, jwt: null });
    expect(() => gatewaySecurityFromEnv({ JWT_SECRET: "a", JWT_JWKS_URL: "https://idp.example/jwks" })).toThrow(/one JWT key/);
  });
});

describe("issue 13, defects 6–8: unsafe input is found and named", () => {
  it("NUL in a value or key, lone surrogates, reserved keys, too deep", () => {
    expect(findInputProblem({ a: "x\u0000y" }, "body")).toMatchObject({ field: "body.a" });
    expect(findInputProblem({ "a\u0000": 1 }, "body")).toMatchObject({ field: "body", type: "key" });
    expect(findInputProblem({ list: ["ok", "\ud800"] }, "body")).toMatchObject({ field: "body.list[1]" });
    expect(findInputProblem(JSON.parse('{"p":{"__proto__":{"x":1}}}'), "body")).toMatchObject({ field: "body.p", type: "key" });
    expect(findInputProblem({ constructor: 1 }, "query")).toMatchObject({ field: "query" });
    let deep: unknown = 1;
    for (let i = 0; i < 5000; i++) deep = { a: deep };
    expect(findInputProblem(deep, "body")).toMatchObject({ type: "depth" });
    let fine: unknown = 1;
    for (let i = 0; i < MAX_DEPTH - 1; i++) fine = { a: fine };
    expect(findInputProblem(fine, "body")).toBeNull();
    expect(findInputProblem({ emoji: "😀", text: "plain" }, "body")).toBeNull();
  });

  it("defect 8: __proto__, constructor, prototype as payload paths in filters and sort are FilterErrors", () => {
    expect(() => parseFilters(["__proto__.polluted=1"], "task")).toThrow(FilterError);
    expect(() => parseFilters(["a.constructor.prototype=1"], "task")).toThrow(FilterError);
    expect(() => parseSort(["payload.__proto__"], "task", "+task.id")).toThrow(FilterError);
    expect(parseFilters(["amount>5"], "task").where).toHaveLength(1);
  });
});

describe("issue 13, defect 10: impossible dates are refused", () => {
  it("2027-02-30 is no date; 2028-02-29 is", () => {
    expect(isCalendarDateTime("2027-02-30T00:00:00Z")).toBe(false);
    expect(isCalendarDateTime("2027-13-01")).toBe(false);
    expect(isCalendarDateTime("2027-01-01T24:00:00Z")).toBe(false);
    expect(isCalendarDateTime("2028-02-29T10:00:00+01:00")).toBe(true);
    const errors: { type: string; actual: unknown }[] = [];
    isoDate().custom("2027-02-30T00:00:00Z", errors);
    expect(errors).toHaveLength(1);
    expect(() => parseFilters(["task.dueDate<2027-02-30"], "task")).toThrow(FilterError);
  });
});

describe("issue 13, defects 4 and 13: errors carry no stack and echo no input", () => {
  it("body-parser's errors, also as moleculer-web wraps them, are 400/413/415", () => {
    expect(errorResponse({ status: 400, expose: true, type: "entity.parse.failed", message: "Unexpected token" }).status).toBe(400);
    expect(errorResponse({ name: "MoleculerError", code: "Z_DATA_ERROR", message: "incorrect header check" }).status).toBe(400);
    expect(errorResponse({ name: "MoleculerError", code: 415, type: "encoding.unsupported", message: "unsupported content encoding" }).status).toBe(415);
    expect(errorResponse({ status: 413, expose: true, type: "entity.too.large" }).status).toBe(413);
  });

  it("an unknown error is a bare 500; a validation error echoes no input (`actual`), only the field and index", () => {
    const internal = errorResponse(Object.assign(new Error("boom at /srv/x.ts:1"), { stack: "Error: boom\n    at x" }));
    expect(internal).toEqual({ status: 500, body: { type: "INTERNAL_ERROR", message: "Internal error" } });
    const long = "x".repeat(5000);
    const validation = errorResponse({ name: "ValidationError", type: "VALIDATION_ERROR", code: 422, message: "bad", data: [{ field: "body.a", actual: long }, { field: "body.b", actual: { nested: 1 } }, { field: "filters", index: 2, actual: "task.nope=1" }] });
    expect(validation.status).toBe(400);
    expect(JSON.stringify(validation.body)).not.toContain(long);
    expect((validation.body.data as Record<string, unknown>[])[1]!.actual).toBeUndefined();
    expect((validation.body.data as Record<string, unknown>[])[2]).toEqual({ field: "filters", index: 2 });
    expect(JSON.stringify(validation.body)).not.toContain("task.nope=1");
  });
});

describe("issue 13, defect 5: event streams are capped", () => {
  it("per user and in total; a released stream frees its place", () => {
    const limiter = new StreamLimiter({ streamsPerUser: 2, streamsTotal: 3 });
    const a1 = limiter.open("a")!;
    expect(limiter.open("a")).not.toBeNull();
    expect(limiter.open("a")).toBeNull();
    expect(limiter.open("b")).not.toBeNull();
    expect(limiter.open("c")).toBeNull();
    a1();
    a1();
    expect(limiter.open("c")).not.toBeNull();
  });
});
