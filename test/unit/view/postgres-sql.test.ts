// The PostgreSQL view's translation of the view's MongoDB filter and sort documents into SQL
// (view/stores/postgres-store.ts). What each translation returns on real data is checked by the shared store suite
// (test/integration/view.test.ts); here: the shape that lets the planner use the indexes, keys that cannot be
// read as jsonpath syntax, and refusals instead of guesses.
import { describe, expect, it } from "vitest";
import { orderByOf, tableName, UnsupportedFilterError, whereOf } from "../../../view/stores/postgres-store.ts";

describe("MongoDB filter → SQL", () => {
  it("uses the id, deleted and principals columns (the indexed ones) directly", () => {
    expect(whereOf({ _id: "t1" })).toEqual({ sql: "id = ?", bindings: ["t1"] });
    expect(whereOf({ deleted: false, authorizedPrincipals: { $in: ["user:kermit", "group:muppetshow"] } })).toEqual({
      sql: "(NOT deleted AND principals && ?::text[])",
      bindings: [["user:kermit", "group:muppetshow"]],
    });
  });

  it("turns equality, $in and ranges into jsonpath predicates over every array element, each key quoted", () => {
    expect(whereOf({ "payload.a.b": 5 })).toEqual({ sql: "doc @\\? ?::jsonpath", bindings: ['$."payload"."a"."b"[*] ? (@ == 5)'] });
    expect(whereOf({ assignee: { $in: ["kermit", "piggy"] } }).bindings).toEqual(['$."assignee"[*] ? (@ == "kermit" || @ == "piggy")']);
    expect(whereOf({ dueDate: { $gte: "2026-01-01", $lte: "2026-02-01" } }).bindings).toEqual(['$."dueDate"[*] ? (@ >= "2026-01-01")', '$."dueDate"[*] ? (@ <= "2026-02-01")']);
    // A key full of jsonpath syntax stays a key; a value full of quotes stays a string.
    expect(whereOf({ 'payload.x") || (true': 'a"b' }).bindings).toEqual(['$."payload"."x\\") || (true"[*] ? (@ == "a\\"b")']);
  });

  it("reads null as MongoDB does: missing, null or an array holding null", () => {
    expect(whereOf({ assignee: null })).toEqual({ sql: "(NOT doc @\\? ?::jsonpath OR doc @\\? ?::jsonpath)", bindings: ['$."assignee"', '$."assignee"[*] ? (@ == null)'] });
    expect(whereOf({ assignee: { $ne: null } }).sql).toBe("NOT (NOT doc @\\? ?::jsonpath OR doc @\\? ?::jsonpath)");
  });

  it("matches text case-insensitively with like_regex", () => {
    expect(whereOf({ name: { $regex: "approve\\.", $options: "i" } }).bindings).toEqual(['$."name"[*] ? (@ like_regex "approve\\\\." flag "i")']);
  });

  it("combines $or and $and, and an empty filter matches everything", () => {
    expect(whereOf({ $or: [{ _id: "a" }, { _id: "b" }] })).toEqual({ sql: "(id = ? OR id = ?)", bindings: ["a", "b"] });
    expect(whereOf({})).toEqual({ sql: "true", bindings: [] });
    expect(whereOf({ _id: { $in: [] } })).toEqual({ sql: "id = ANY(?::text[])", bindings: [[]] });
  });

  it("refuses what it does not know instead of guessing", () => {
    expect(() => whereOf({ $where: "1" })).toThrow(UnsupportedFilterError);
    expect(() => whereOf({ name: { $elemMatch: {} } })).toThrow(UnsupportedFilterError);
    expect(() => whereOf({ name: { nested: 1 } })).toThrow(UnsupportedFilterError);
    expect(() => whereOf({ priority: Number.NaN })).toThrow(UnsupportedFilterError);
  });
});

describe("sort → ORDER BY", () => {
  it("orders by type rank, number and code-point text, missing and null first ascending, ties by id", () => {
    expect(orderByOf([["createTime", -1], ["_id", 1]])).toBe(
      ` ORDER BY view_rank((doc #> '{"createTime"}')) DESC NULLS LAST, view_number((doc #> '{"createTime"}')) DESC NULLS LAST, ` +
        `view_text((doc #> '{"createTime"}')) COLLATE "C" DESC NULLS LAST, id ASC`,
    );
    expect(orderByOf([["payload.it's", 1]])).toContain(`(doc #> '{"payload","it''s"}')`);
    expect(orderByOf([])).toBe("");
  });

  it("names tables in SQL's case", () => {
    expect(tableName("dataEntries_g2")).toBe("data_entries_g2");
    expect(() => tableName('x"; DROP TABLE y')).toThrow(UnsupportedFilterError);
  });
});
