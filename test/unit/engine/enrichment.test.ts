import { describe, expect, it } from "vitest";
import { assignFromVariables, correlate, filterVariables, filtersFor, isVariableIncluded, type VariableFilter } from "../../../engine/connector/enrichment.ts";

const variables = { requestId: "R-1", amount: 100, secret: "s", applicant: "kermit", comment: "ok" };

describe("variable filters", () => {
  it("includes everything without a filter", () => {
    expect(filterVariables(undefined, { processDefinitionKey: "p", taskDefinitionKey: "t" }, variables)).toEqual(variables);
    expect(isVariableIncluded([], { processDefinitionKey: "p" }, "anything")).toBe(true);
  });

  it("applies a process filter (include or exclude) to every task of the process", () => {
    const exclude: VariableFilter[] = [{ kind: "process", processDefinitionKey: "p", mode: "EXCLUDE", variables: ["secret"] }];
    expect(filterVariables(exclude, { processDefinitionKey: "p", taskDefinitionKey: "t" }, variables)).toEqual({ requestId: "R-1", amount: 100, applicant: "kermit", comment: "ok" });
    const include: VariableFilter[] = [{ kind: "process", processDefinitionKey: "p", mode: "INCLUDE", variables: ["amount", "missing"] }];
    expect(filterVariables(include, { processDefinitionKey: "p", taskDefinitionKey: "t" }, variables)).toEqual({ amount: 100 });
    // Another process is not affected.
    expect(filterVariables(include, { processDefinitionKey: "other", taskDefinitionKey: "t" }, variables)).toEqual(variables);
  });

  it("prefers the process's own filters over global ones; filters of one scope must all include a variable", () => {
    const filters: VariableFilter[] = [
      { kind: "process", processDefinitionKey: null, mode: "INCLUDE", variables: ["requestId"] },
      { kind: "process", processDefinitionKey: "p", mode: "EXCLUDE", variables: ["secret"] },
      { kind: "task", processDefinitionKey: "p", mode: "INCLUDE", tasks: { review: ["requestId", "comment", "secret"] } },
    ];
    expect(filtersFor(filters, "p")).toHaveLength(2);
    expect(filtersFor(filters, "q")).toHaveLength(1);
    expect(filterVariables(filters, { processDefinitionKey: "q", taskDefinitionKey: "review" }, variables)).toEqual({ requestId: "R-1" });
    expect(filterVariables(filters, { processDefinitionKey: "p", taskDefinitionKey: "review" }, variables)).toEqual({ requestId: "R-1", comment: "ok" });
    // A task the task filter does not list is restricted by the process filter only.
    expect(filterVariables(filters, { processDefinitionKey: "p", taskDefinitionKey: "approve" }, variables)).toEqual({ requestId: "R-1", amount: 100, applicant: "kermit", comment: "ok" });
  });

  it("applies task filters per task, in both modes, and leaves process variables (no task) to the process filters", () => {
    const filters: VariableFilter[] = [{ kind: "task", processDefinitionKey: "p", mode: "EXCLUDE", tasks: { approve: ["secret", "comment"] } }];
    expect(filterVariables(filters, { processDefinitionKey: "p", taskDefinitionKey: "approve" }, variables)).toEqual({ requestId: "R-1", amount: 100, applicant: "kermit" });
    expect(isVariableIncluded(filters, { processDefinitionKey: "p" }, "secret")).toBe(true);
  });
});

describe("correlations", () => {
  const config = [
    {
      processDefinitionKey: "p",
      global: [
        { variable: "requestId", entryType: "Request" },
        { variable: "requestId", entryType: "Archive" },
      ],
      tasks: { review: [{ variable: "amount", entryType: "Budget" }, { variable: "nothing", entryType: "Never" }] },
    },
  ];

  it("maps set variables to entry types, several entry types per variable, global and per task", () => {
    expect(correlate(config, { processDefinitionKey: "p", taskDefinitionKey: "approve" }, variables)).toEqual({ Request: "R-1", Archive: "R-1" });
    expect(correlate(config, { processDefinitionKey: "p", taskDefinitionKey: "review" }, variables)).toEqual({ Request: "R-1", Archive: "R-1", Budget: "100" });
    expect(correlate(config, { processDefinitionKey: "q", taskDefinitionKey: "review" }, variables)).toEqual({});
    expect(correlate(undefined, { processDefinitionKey: "p" }, variables)).toEqual({});
  });

  it("takes no correlation from an empty, null or structured value", () => {
    expect(correlate(config, { processDefinitionKey: "p", taskDefinitionKey: "review" }, { requestId: "", amount: { x: 1 } })).toEqual({});
    expect(correlate(config, { processDefinitionKey: "p" }, { requestId: null })).toEqual({});
    expect(correlate(config, { processDefinitionKey: "p" }, { requestId: true })).toEqual({ Request: "true", Archive: "true" });
  });
});

describe("assignment from variables", () => {
  const engine = { assignee: "gonzo", candidateUsers: ["a"], candidateGroups: ["g"] };

  it("keeps the engine's values when not configured or when the variables are absent", () => {
    expect(assignFromVariables(null, engine, variables)).toEqual(engine);
    expect(assignFromVariables({ assignee: "owner", candidateUsers: "users" }, engine, {})).toEqual(engine);
  });

  it("takes set variables: a name, comma-separated names, or arrays", () => {
    expect(
      assignFromVariables({ assignee: "owner", candidateUsers: "users", candidateGroups: "groups" }, engine, { owner: " kermit ", users: "piggy, fozzie,,", groups: ["muppets", "", 3] }),
    ).toEqual({ assignee: "kermit", candidateUsers: ["piggy", "fozzie"], candidateGroups: ["muppets"] });
    expect(assignFromVariables({ assignee: "owner" }, engine, { owner: "" })).toMatchObject({ assignee: null });
  });
});
