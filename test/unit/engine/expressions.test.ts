import { describe, expect, it } from "vitest";
import { ExpressionError, evaluateExpression, hasExpression, isExpression, parseTemplate, resolveTemplate } from "../../../domain/engine/expressions.ts";

const variables = {
  approveDecision: "APPROVE",
  amount: 1200,
  small: 5,
  approved: true,
  rejected: false,
  originator: "kermit",
  nothing: null,
  count: "42",
  request: { subject: "Salary", applicant: { name: "Kermit" }, tags: ["a", "b"], "spaced key": 1 },
  list: [10, 20, 30],
  emptyList: [],
  emptyText: "",
};

const value = (text: string) => resolveTemplate(text, variables);

describe("expressions: literals, identifiers and properties", () => {
  it("reads identifiers, nested properties and indexes, and literals", () => {
    expect(value("${originator}")).toBe("kermit");
    expect(value("${amount}")).toBe(1200);
    expect(value("${request.subject}")).toBe("Salary");
    expect(value("${request.applicant.name}")).toBe("Kermit");
    expect(value("${request['spaced key']}")).toBe(1);
    expect(value('${request["tags"][1]}')).toBe("b");
    expect(value("${list[0] + list[2]}")).toBe(40);
    expect(value("${'it\\'s'}")).toBe("it's");
    expect(value('${"a \\"quoted\\" }"}')).toBe('a "quoted" }');
    expect(value("${true}")).toBe(true);
    expect(value("${null}")).toBeNull();
    expect(value("${2.5e1}")).toBe(25);
  });

  it("gives null for a property of null and for a missing property; an unknown identifier is an error", () => {
    expect(value("${nothing.anything}")).toBeNull();
    expect(value("${request.missing}")).toBeNull();
    expect(value("${list[7]}")).toBeNull();
    expect(() => value("${unknownVariable == 1}")).toThrow(/Cannot resolve identifier 'unknownVariable'/);
  });

  it("reads own properties only: no prototype, no constructor", () => {
    expect(value("${request.constructor}")).toBeNull();
    expect(value("${request.__proto__}")).toBeNull();
    expect(value("${request.toString}")).toBeNull();
    expect(() => value("${toString}")).toThrow(ExpressionError);
    expect(() => value("${constructor}")).toThrow(ExpressionError);
  });

  it("refuses method and function calls", () => {
    expect(() => value("${originator.toUpperCase()}")).toThrow(/calls are not supported/);
    expect(() => value("${execution.getVariable('x')}")).toThrow(ExpressionError);
  });
});

describe("expressions: operators with EL's coercions", () => {
  it("compares with == and != (and eq, ne), coercing numbers and booleans", () => {
    expect(value('${approveDecision == "APPROVE"}')).toBe(true);
    expect(value("${approveDecision == 'REJECT'}")).toBe(false);
    expect(value('${approveDecision != "APPROVE"}')).toBe(false);
    expect(value("${approveDecision eq 'APPROVE'}")).toBe(true);
    expect(value("${approveDecision ne 'APPROVE'}")).toBe(false);
    expect(value("${count == 42}")).toBe(true);
    expect(value("${approved == 'true'}")).toBe(true);
    expect(value("${nothing == null}")).toBe(true);
    expect(value("${originator == null}")).toBe(false);
    expect(value("${request.tags == request.tags}")).toBe(true);
  });

  it("orders numbers and strings with < > <= >= (and lt, gt, le, ge); null is never ordered", () => {
    expect(value("${amount > 1000}")).toBe(true);
    expect(value("${amount >= 1200 && amount <= 1200}")).toBe(true);
    expect(value("${small < count}")).toBe(true);
    expect(value("${amount lt 1000}")).toBe(false);
    expect(value("${amount gt 1000 and small le 5 and small ge 5}")).toBe(true);
    expect(value("${'abc' < 'abd'}")).toBe(true);
    expect(value("${nothing < 1}")).toBe(false);
    expect(() => value("${request < 1}")).toThrow(/coerce/);
  });

  it("combines with && || ! and the words and, or, not, short-circuiting, with parentheses", () => {
    expect(value("${approved && !rejected}")).toBe(true);
    expect(value("${rejected || approved}")).toBe(true);
    expect(value("${not approved}")).toBe(false);
    expect(value("${approved and (rejected or amount > 1000)}")).toBe(true);
    // The right side is not evaluated, so its unknown identifier is no error.
    expect(value("${rejected && unknownVariable}")).toBe(false);
    expect(value("${approved || unknownVariable}")).toBe(true);
    expect(value("${!(amount > 1000) || rejected}")).toBe(false);
  });

  it("knows empty, the conditional operator and arithmetic", () => {
    expect(value("${empty emptyList}")).toBe(true);
    expect(value("${empty emptyText && empty nothing}")).toBe(true);
    expect(value("${empty originator}")).toBe(false);
    expect(value("${not empty list}")).toBe(true);
    expect(value("${amount > 1000 ? 'big' : 'small'}")).toBe("big");
    expect(value("${amount * 2 - small / 5 % 3}")).toBe(2399);
    expect(value("${-small + 10}")).toBe(5);
    expect(value("${amount div 100 mod 5}")).toBe(2);
  });
});

describe("expressions: templates", () => {
  it("gives one expression's value as it is, and text around expressions as text", () => {
    expect(value("${list}")).toEqual([10, 20, 30]);
    expect(value("  ${amount}  ")).toBe("  1200  ");
    expect(value("Request of ${originator}: ${amount} (${nothing})")).toBe("Request of kermit: 1200 ()");
    expect(value("gonzo, ${originator}")).toBe("gonzo, kermit");
    expect(value("no expression here")).toBe("no expression here");
    expect(value("#{originator}")).toBe("kermit");
    expect(value("#{amount > 10} and ${approved}")).toBe("true and true");
  });

  it("tells expressions from plain text", () => {
    expect(hasExpression("a ${b}")).toBe(true);
    expect(hasExpression("#{b}")).toBe(true);
    expect(hasExpression("plain")).toBe(false);
    expect(hasExpression(undefined)).toBe(false);
    expect(isExpression("${a == 'x'}")).toBe(true);
    expect(isExpression("${a} ${b}")).toBe(false);
    expect(isExpression("a ${b}")).toBe(false);
  });

  it("reports syntax errors with their position", () => {
    expect(() => parseTemplate("${amount >}")).toThrow(/Unexpected/);
    expect(() => parseTemplate("${amount")).toThrow(/Missing "}"/);
    expect(() => parseTemplate("${}")).toThrow(/Empty expression/);
    expect(() => parseTemplate("${'open}")).toThrow(/Unterminated string/);
    expect(() => parseTemplate("${a ; b}")).toThrow(/Unexpected character ";"/);
    expect(() => parseTemplate("${(a}")).toThrow(/Expected "\)"/);
  });

  it("evaluates bare expressions", () => {
    expect(evaluateExpression("approveDecision == 'APPROVE' && amount > 100", variables)).toBe(true);
    expect(() => evaluateExpression("", variables)).toThrow(/Empty expression/);
  });
});
