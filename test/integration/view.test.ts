// The view on every store — in memory, MongoDB (the real FerretDB server through the official driver), the real
// PostgreSQL server and PGlite (the embedded platform's database) — fed the same seeded events. Every query runs
// against all of them and must answer identically; the semantics are checked on each; a property test checks
// tasksForUser's authorization; replay must rebuild identical documents.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import fc from "fast-check";
import ViewService from "../../services/view.service.ts";
import { MongoViewStore } from "../../view/stores/mongo-store.ts";
import { call, dropSchema, errorOf, startBroker, testDatabaseUrl, testMongoUrl, unique, waitFor } from "../helpers.ts";
import { writeSide } from "../platform.ts";
import { REQUEST, seed, USER_ENTRY, users } from "../fixtures/view-seed.ts";

const VIEWS = ["view", "viewMongo", "viewPostgres", "viewPglite"] as const;
type ViewName = (typeof VIEWS)[number];


let broker: ServiceBroker;
let lastPosition = 0;
const database = unique("view");
const schema = unique("view").toLowerCase().replace(/[^a-z0-9_]/g, "_");

beforeAll(async () => {
  broker = await startBroker([
    ...writeSide(),
    { ...ViewService, settings: { store: "memory", mongoUrl: null, processorName: "view-embedded", dropDelayMs: 60_000 } },
    { ...ViewService, name: "viewMongo", settings: { store: "mongo", mongoUrl: testMongoUrl(), database, processorName: "view-mongo", dropDelayMs: 60_000 } },
    { ...ViewService, name: "viewPostgres", settings: { store: "postgres", databaseUrl: testDatabaseUrl(), schema, processorName: "view-postgres", dropDelayMs: 60_000 } },
    { ...ViewService, name: "viewPglite", settings: { store: "postgres", databaseUrl: null, pgliteDir: "memory", processorName: "view-pglite", dropDelayMs: 60_000 } },
    // Totals capped at 2 (VIEW_COUNT_CAP), in memory and on PostgreSQL.
    { ...ViewService, name: "viewCapped", settings: { store: "memory", mongoUrl: null, processorName: "view-capped", dropDelayMs: 60_000, countCap: 2 } },
    { ...ViewService, name: "viewPostgresCapped", settings: { store: "postgres", databaseUrl: testDatabaseUrl(), schema: `${schema}_capped`, processorName: "view-postgres-capped", dropDelayMs: 60_000, countCap: 2 } },
  ]);
  lastPosition = await seed(broker);
});

afterAll(async () => {
  await broker?.stop();
  const store = await MongoViewStore.connect(testMongoUrl(), database);
  await store.dropDatabase();
  await store.close();
  await dropSchema(schema);
  await dropSchema(`${schema}_capped`);
});

const q = (view: ViewName, query: string, params: object = {}) => call(view === "view" ? broker : broker, `${view}.${query}`, { minPosition: lastPosition, ...params });
const ids = (result: { elements: { id?: string; task?: { id: string } }[] }) => result.elements.map((e) => e.id ?? e.task!.id);

describe.each(VIEWS)("queries on %s", (view) => {
  it("tasksForUser: assignee, candidate user or shared candidate group — completed tasks gone", async () => {
    expect(ids(await q(view, "tasksForUser", { user: users.kermit }))).toEqual(["t09", "t06", "t03", "t02", "t01"]);
    expect(ids(await q(view, "tasksForUser", { user: users.piggy, sort: ["+task.id"] }))).toEqual(["t01", "t02", "t03", "t06", "t08", "t09"]);
    expect(ids(await q(view, "tasksForUser", { user: users.ironman, sort: ["+id"] }))).toEqual(["t04", "t05", "t08"]);
    expect((await q(view, "tasksForUser", { user: users.nobody })).totalElementCount).toBe(0);
    expect(ids(await q(view, "tasksForUser", { user: users.kermit, assignedToMeOnly: true, sort: ["+id"] }))).toEqual(["t02", "t03"]);
  });

  it("tasksForUser with involvementsOnly: assigned, or correlated to an entry naming the user — never a task the user may not see", async () => {
    expect(ids(await q(view, "tasksForUser", { user: users.kermit, involvementsOnly: true, sort: ["+id"] }))).toEqual(["t01", "t02", "t03"]);
    // piggy submitted r4, r5 and r6, but t04 and t05 belong to the avengers: they must not leak.
    expect(ids(await q(view, "tasksForUser", { user: users.piggy, involvementsOnly: true, sort: ["+id"] }))).toEqual(["t06", "t08"]);
  });

  it("tasksForGroup, tasksForCandidateUserAndGroup, tasksForApplication, allTasks, taskForId", async () => {
    expect(ids(await q(view, "tasksForGroup", { user: users.kermit, sort: ["+id"] }))).toEqual(["t01", "t06", "t09"]);
    expect(ids(await q(view, "tasksForGroup", { user: users.kermit, includeAssigned: true, sort: ["+id"] }))).toEqual(["t02", "t03"]);
    expect(ids(await q(view, "tasksForCandidateUserAndGroup", { user: users.fozzy, sort: ["+id"] }))).toEqual(["t01", "t02", "t03", "t06", "t09"]);
    expect(ids(await q(view, "tasksForCandidateUserAndGroup", { user: users.fozzy, includeAssigned: false, sort: ["+id"] }))).toEqual(["t01", "t06", "t09"]);
    expect(ids(await q(view, "tasksForApplication", { applicationName: "invoice", sort: ["+id"] }))).toEqual(["t06", "t07", "t08"]);
    expect((await q(view, "allTasks")).totalElementCount).toBe(9);
    const task = await q(view, "taskForId", { id: "t01" });
    expect(task).toMatchObject({
      id: "t01",
      name: "Approve request 1",
      followUpDate: "2026-12-20T00:00:00.000Z",
      processName: "Request Approval",
      payload: { amount: 100, "with.dot": 0, nested: { level: 0 } },
      correlations: { [REQUEST]: "r1", [USER_ENTRY]: "kermit" },
    });
    expect(await q(view, "taskForId", { id: "t01", user: users.ironman })).toBeNull();
    expect(await q(view, "taskForId", { id: "t10" })).toBeNull();
    expect((await q(view, "taskForId", { id: "t04" })).lastRefusal).toMatchObject({ interaction: "claim", reason: "TaskAlreadyClaimedException", username: "ironman" });
  });

  it("filters: typed values, every operator, AND across fields, OR within a field", async () => {
    const kermit = (filters: string[], sort = ["+id"]) => q(view, "tasksForUser", { user: users.kermit, filters, sort }).then(ids);
    expect(await kermit(["amount>300"])).toEqual(["t06", "t09"]);
    expect(await kermit(["amount<300"])).toEqual(["t01", "t02"]);
    expect(await kermit(["amount=200"])).toEqual(["t02"]);
    expect(await kermit(["amount[]150|650"])).toEqual(["t02", "t03", "t09"]);
    expect(await kermit(["task.priority[]10|40"])).toEqual(["t01", "t03", "t09"]);
    expect(await kermit(["task.priority>20", "task.priority<45"])).toEqual(["t01", "t09"]);
    expect(await kermit(["task.dueDate<2026-12-02"])).toEqual(["t01"]);
    expect(await kermit(["task.dueDate[]2026-12-01T00:00:00Z|2026-12-04"])).toEqual(["t01", "t09"]);
    expect(await kermit(["task.dueDate=null"])).toEqual(["t03"]);
    expect(await kermit(["task.followUpDate>2026-12-01"])).toEqual(["t01"]);
    expect(await kermit(["task.name%APPROVE"])).toEqual(["t01", "t02", "t09"]);
    expect(await kermit(["task.textSearch%invoice"])).toEqual(["t06"]);
    expect(await kermit(["task.assignee=kermit", "task.assignee=nobody"])).toEqual(["t02", "t03"]);
    expect(await kermit(["task.candidateUsers=fozzy"])).toEqual(["t01", "t02"]);
    expect(await kermit(["task.candidateGroups=muppetshow", "task.applicationName=invoice"])).toEqual(["t06"]);
    expect(await kermit(["nested.level=1"])).toEqual(["t02"]);
    expect(await kermit(["flag=true"])).toEqual(["t01", "t03", "t09"]);
    expect(await kermit(["originator=kermit", "amount>250"])).toEqual(["t03", "t06", "t09"]);
    expect(await kermit(["task.businessKey=BK-t06"])).toEqual(["t06"]);
  });

  it("sorts by several fields and pages with the total computed by the store", async () => {
    const sorted = await q(view, "tasksForUser", { user: users.piggy, sort: ["-task.priority", "+task.name"] });
    expect(ids(sorted)).toEqual(["t02", "t09", "t01", "t03", "t06", "t08"]);
    expect(ids(await q(view, "allTasks", { sort: ["+payload.amount"] }))).toEqual(["t01", "t02", "t03", "t04", "t05", "t09", "t06", "t07", "t08"]);
    expect(ids(await q(view, "allTasks", { sort: ["+dueDate", "+id"] }))).toEqual(["t03", "t07", "t04", "t01", "t08", "t09", "t02", "t05", "t06"]);
    const page = await q(view, "tasksForUser", { user: users.piggy, sort: ["+id"], page: 1, size: 4 });
    expect(page).toMatchObject({ totalElementCount: 6 });
    expect(ids(page)).toEqual(["t08", "t09"]);
  });

  it("refuses unknown fields, operators and bad values with VALIDATION_ERROR", async () => {
    for (const filters of [["task.bogus=1"], ["task.priority%1"], ["task.dueDate>tomorrow"], ["task.priority>high"], ["no-operator"], ["data.name=x"], ["amount[]1"]]) {
      const err = await errorOf(q(view, "allTasks", { filters: ["task.priority>1", ...filters] }));
      expect(err.type).toBe("VALIDATION_ERROR");
      expect(err.data[0]).toEqual({ field: "filters", index: 1, message: expect.any(String) });
    }
    const sortErr = await errorOf(q(view, "allTasks", { sort: ["+task.bogus"] }));
    expect(sortErr.data[0].field).toBe("sort");
    const dataErr = await errorOf(q(view, "dataEntries", { filters: ["task.name=x"] }));
    expect(dataErr.type).toBe("VALIDATION_ERROR");
  });

  it("joins tasks with their data entries, filtered by the caller's authorization", async () => {
    const forKermit = await q(view, "tasksWithDataEntriesForUser", { user: users.kermit, sort: ["+id"] });
    const byTask = new Map(forKermit.elements.map((e: any) => [e.task.id, e.dataEntries.map((d: any) => d.entryId)]));
    expect(byTask.get("t01")).toEqual(["r1", "kermit"]);
    expect(byTask.get("t09")).toEqual([]);
    const forPiggy = await q(view, "tasksWithDataEntriesForUser", { user: users.piggy, filters: ["task.id=t01"] });
    expect(forPiggy.elements[0].dataEntries.map((d: any) => d.entryId)).toEqual(["kermit"]);
    const completed = await q(view, "tasksWithDataEntriesForUser", { user: users.kermit, filters: ["data.state.processingType=COMPLETED"] });
    expect(ids(completed)).toEqual(["t02"]);
    expect((await q(view, "tasksWithDataEntriesForGroup", { user: users.ironman, includeAssigned: true, sort: ["+id"] })).elements.map((e: any) => e.task.id)).toEqual(["t05", "t08"]);
    expect((await q(view, "allTasksWithDataEntries", { size: 3 })).totalElementCount).toBe(9);
    const one = await q(view, "taskWithDataEntriesForId", { id: "t06", user: users.piggy });
    expect(one.dataEntries.map((d: any) => d.entryId)).toEqual(["r6"]);
    expect(await q(view, "taskWithDataEntriesForId", { id: "t06", user: users.ironman })).toBeNull();
  });

  it("counts tasks per application and lists task attribute names and values", async () => {
    expect(await q(view, "taskCountByApplication")).toEqual([
      { application: "approval", taskCount: 6 },
      { application: "invoice", taskCount: 3 },
    ]);
    expect((await q(view, "taskAttributeNames", { user: users.kermit })).elements).toEqual(["amount", "flag", "nested.level", "originator", "with.dot"]);
    expect((await q(view, "taskAttributeValues", { attributeName: "amount", user: users.kermit })).elements).toEqual([100, 200, 300, 600, 700]);
    expect((await q(view, "taskAttributeValues", { attributeName: "amount", user: users.kermit, assignedToMeOnly: true })).elements).toEqual([200, 300]);
  });

  it("answers the data entry queries with authorization, involvements, filters and paging", async () => {
    const r1 = await q(view, "dataEntryForIdentity", { entryType: REQUEST, entryId: "r1" });
    expect(r1).toMatchObject({ name: "Request 1", payload: { amount: 100, "dotted.key": 1 }, authorizedUsers: ["kermit"], createdDate: "2026-11-01T09:00:00.000Z" });
    expect(r1.protocol).toEqual([{ time: "2026-11-01T09:00:00.000Z", processingType: "IN_PROGRESS", state: "Submitted", username: "kermit", logMessage: "Request submitted", logDetails: null }]);
    expect(await q(view, "dataEntryForIdentity", { entryType: REQUEST, entryId: "gone" })).toBeNull();
    expect(await q(view, "dataEntryForIdentity", { entryType: REQUEST, entryId: "r1", user: users.piggy })).toBeNull();
    const entryIds = (r: any) => r.elements.map((e: any) => e.entryId);
    expect(entryIds(await q(view, "dataEntriesForType", { entryType: REQUEST, sort: ["+entryId"] }))).toEqual(["r1", "r2", "r3", "r4", "r5", "r6"]);
    expect(entryIds(await q(view, "dataEntriesForUser", { user: users.kermit, sort: ["+data.entryId"] }))).toEqual(["kermit", "r1", "r2", "r3"]);
    expect(entryIds(await q(view, "dataEntriesForUser", { user: users.kermit, involvementsOnly: true, sort: ["+entryId"] }))).toEqual(["r1", "r2", "r3"]);
    expect(entryIds(await q(view, "dataEntriesForUser", { user: users.gonzo, sort: ["+entryId"] }))).toEqual(["kermit", "r2"]);
    expect(entryIds(await q(view, "dataEntriesForUser", { user: users.ironman }))).toEqual(["r6"]);
    expect(entryIds(await q(view, "dataEntries", { filters: ["data.state.state=Approved"] }))).toEqual(["r2"]);
    expect(entryIds(await q(view, "dataEntries", { filters: ["amount>350"], sort: ["+entryId"] }))).toEqual(["r4", "r5", "r6"]);
    expect(entryIds(await q(view, "dataEntries", { filters: ["currency=EUR", "data.entryType=" + REQUEST], sort: ["-entryId"] }))).toEqual(["r5", "r3", "r1"]);
    expect(entryIds(await q(view, "dataEntries", { sort: ["-lastModifiedDate"], size: 2 }))).toEqual(["r2", "r6"]);
    expect((await q(view, "dataEntries", { size: 2, page: 3 })).totalElementCount).toBe(7);
  });

  it("answers the process queries", async () => {
    const keys = (defs: any[]) => defs.map((d) => `${d.processDefinitionKey}:${d.processDefinitionVersion}`);
    expect(keys(await q(view, "processDefinitionsStartableByUser", { user: users.kermit }))).toEqual(["process_approve_request:2"]);
    expect(keys(await q(view, "processDefinitionsStartableByUser", { user: users.piggy }))).toEqual(["process_approve_request:2", "process_invoice:1"]);
    expect(await q(view, "processDefinitionsStartableByUser", { user: users.nobody })).toEqual([]);
    const running = await q(view, "processInstancesByState", { states: ["RUNNING"] });
    expect(running.elements.map((p: any) => [p.processInstanceId, p.state])).toEqual([["pi-1", "RUNNING"]]);
    const ended = await q(view, "processInstancesByState", { states: ["SUSPENDED", "FINISHED", "CANCELLED"] });
    expect(ended.elements.map((p: any) => [p.processInstanceId, p.state])).toEqual([
      ["pi-2", "SUSPENDED"],
      ["pi-3", "FINISHED"],
      ["pi-4", "CANCELLED"],
    ]);
    const vars = await q(view, "processVariablesForInstance", { processInstanceId: "pi-1" });
    expect(vars.variables.map((v: any) => [v.variableName, v.value.value])).toEqual([
      ["amount", 150],
      ["request", { id: "r1", "a.b": 1 }],
    ]);
    const one = await q(view, "processVariablesForInstance", { processInstanceId: "pi-1", variableNames: ["amount"] });
    expect(one.variables).toHaveLength(1);
  });
});

describe("every store", () => {
  it("answers every query identically", async () => {
    const queries: [string, object][] = [
      ["allTasks", {}],
      ["allTasks", { sort: ["+task.priority", "-task.createTime"], filters: ["amount>0"] }],
      ["tasksForUser", { user: users.kermit }],
      ["tasksForUser", { user: users.piggy, involvementsOnly: true }],
      ["tasksForUser", { user: users.hulk, assignedToMeOnly: true }],
      ["tasksForGroup", { user: users.ironman, includeAssigned: true }],
      ["tasksForCandidateUserAndGroup", { user: users.gonzo }],
      ["tasksForApplication", { applicationName: "approval", page: 1, size: 2 }],
      ["taskForId", { id: "t05" }],
      ["allTasksWithDataEntries", { sort: ["-task.dueDate"] }],
      ["tasksWithDataEntriesForUser", { user: users.piggy, filters: ["data.name%request"] }],
      ["tasksWithDataEntriesForGroup", { user: users.kermit }],
      ["taskWithDataEntriesForId", { id: "t01" }],
      ["taskCountByApplication", {}],
      ["taskAttributeNames", {}],
      ["taskAttributeValues", { attributeName: "originator" }],
      ["dataEntryForIdentity", { entryType: REQUEST, entryId: "r2" }],
      ["dataEntriesForType", { entryType: REQUEST, sort: ["+data.name"] }],
      ["dataEntriesForUser", { user: users.piggy, involvementsOnly: true }],
      ["dataEntries", { sort: ["-data.createdDate"], filters: ["data.applicationName=approval"] }],
      ["processDefinitionsStartableByUser", { user: users.piggy }],
      ["processInstancesByState", { states: ["RUNNING", "SUSPENDED", "FINISHED", "CANCELLED"] }],
      ["processVariablesForInstance", { processInstanceId: "pi-1" }],
    ];
    for (const [query, params] of queries) {
      const [memory, ...others] = await Promise.all(VIEWS.map((view) => q(view, query, params)));
      others.forEach((answer, i) => expect(answer, `${query} on ${VIEWS[i + 1]}`).toEqual(memory));
    }
  });

  it("property: tasksForUser returns exactly the tasks the user is assignee, candidate or group candidate of", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            assignee: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
            candidateUsers: fc.uniqueArray(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
            candidateGroups: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.integer({ min: 0, max: 4 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
        async (tasks, userIndex, groupIndexes) => {
          run += 1;
          const u = (i: number) => `p${run}-u${i}`;
          const g = (i: number) => `p${run}-g${i}`;
          let last = 0;
          for (const [n, t] of tasks.entries()) {
            const result = await call(broker, "task.create", {
              id: `p${run}-t${n}`,
              sourceReference: { type: "generic", instanceId: "p", executionId: "p", definitionId: "p", definitionKey: "p", name: "Property", applicationName: `property-${run}` },
              taskDefinitionKey: "p",
              assignee: t.assignee === null ? null : u(t.assignee),
              candidateUsers: t.candidateUsers.map(u),
              candidateGroups: t.candidateGroups.map(g),
            });
            last = Math.max(last, result.globalPosition);
          }
          const user = { username: u(userIndex), groups: groupIndexes.map(g) };
          const expected = tasks
            .map((t, n) => ({ ...t, id: `p${run}-t${n}` }))
            .filter((t) => t.assignee === userIndex || t.candidateUsers.includes(userIndex) || t.candidateGroups.some((x) => groupIndexes.includes(x)))
            .map((t) => t.id)
            .sort();
          for (const view of VIEWS) {
            const result = await q(view, "tasksForUser", { user, sort: ["+id"], minPosition: last });
            expect(ids(result)).toEqual(expected);
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe("count cap", () => {
  const capped = (view: string, query: string, params: object) => call(broker, `${view}.${query}`, { minPosition: lastPosition, ...params });

  it("answers totals exactly up to the cap and the cap beyond it, flagged, with the same pages — on every path of the store", async () => {
    const cases: [string, object][] = [
      ["tasksForUser", { user: users.kermit }],
      ["tasksForUser", { user: users.kermit, sort: ["+task.name"], filters: ["task.priority<1000"] }],
      ["tasksForUser", { user: users.ironman }],
      ["tasksWithDataEntriesForUser", { user: users.piggy, size: 1 }],
      ["allTasks", { size: 1 }],
      ["dataEntriesForUser", { user: users.piggy }],
      ["tasksForUser", { user: users.nobody }],
    ];
    for (const [query, params] of cases) {
      const exact = await q("view", query, params);
      for (const view of ["viewCapped", "viewPostgresCapped"]) {
        const answer = await capped(view, query, params);
        expect(answer.elements, `${query} on ${view}`).toEqual(exact.elements);
        if (exact.totalElementCount > 2) expect({ total: answer.totalElementCount, capped: answer.totalElementCountCapped }, `${query} on ${view}`).toEqual({ total: 2, capped: true });
        else expect(answer, `${query} on ${view}`).toEqual(exact);
      }
    }
  });
});

describe("MongoDB view store", () => {
  it("rewrites many existing documents in one call without exhausting FerretDB's connection pool", async () => {
    // FerretDB 1.x holds a PostgreSQL connection per matching statement of a bulk until the bulk ends; one bulk
    // of 100 replacements once hung the whole server (pool of 50). The store writes in chunks.
    const store = await MongoViewStore.connect(testMongoUrl(), database);
    try {
      const collection = store.collection("bulk_probe");
      const docs = Array.from({ length: 120 }, (_, i) => ({ _id: `d${i}`, n: i, deleted: false }));
      await collection.write(docs);
      await collection.write(docs.map((d) => ({ ...d, n: d.n + 1 })));
      expect(await collection.count({ n: { $gte: 1 } })).toBe(120);
      const { docs: page, total } = await collection.page({ deleted: false }, { sort: [["n", -1]], limit: 3 });
      expect([page.map((d) => d.n), total]).toEqual([[120, 119, 118], 120]);
    } finally {
      await store.close();
    }
  });
});

describe.each(VIEWS)("consistency on %s", (view) => {
  it("waits for minPosition, bounded, and reports its applied position", async () => {
    const { globalPosition } = await call(broker, "task.create", {
      id: `late-${view}`,
      sourceReference: { type: "process", instanceId: "x", executionId: "x", definitionId: "x", definitionKey: "x", name: "Late", applicationName: "late" },
      taskDefinitionKey: "late",
    });
    const found = await q(view, "taskForId", { id: `late-${view}`, minPosition: globalPosition });
    expect(found?.id).toBe(`late-${view}`);
    const position = await call(broker, `${view}.position`);
    expect(position.globalPosition).toBeGreaterThanOrEqual(globalPosition);
    const err = await errorOf(q(view, "allTasks", { minPosition: globalPosition + 1000, maxWaitMs: 200 }));
    expect(err).toMatchObject({ type: "CONSISTENCY_TIMEOUT", code: 503 });
  });
});

describe.each(VIEWS)("kept answers on %s", (view) => {
  it("confirms a known version without answering again, and answers anew once the view has moved on", async () => {
    const kermit = { username: "kermit", groups: ["muppetshow"] };
    // Everything appended so far (earlier tests' tasks included) applied, so that only this test's task is new.
    const { globalPosition: head } = await call(broker, "eventstore.head");
    const plain = await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, minPosition: head });
    expect(plain.version).toBeUndefined();
    const first = await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, knownVersion: "", minPosition: head });
    expect(first.version).toMatch(/^\d+:/);
    expect(first.elements).toEqual(plain.elements);
    expect(await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, knownVersion: first.version })).toEqual({ unchanged: true, version: first.version });
    const entries = await q(view, "dataEntriesForUser", { user: kermit, size: 5, knownVersion: "" });
    expect(await q(view, "dataEntriesForUser", { user: kermit, size: 5, knownVersion: entries.version })).toEqual({ unchanged: true, version: entries.version });
    const source = { type: "process", instanceId: "x", executionId: "x", definitionId: "x", definitionKey: "x", name: "Kept", applicationName: "kept" };
    // A task only others may see: kermit's answers stay current (their version is kermit's), the other user's not.
    const ironman = { username: "ironman", groups: ["avengers"] };
    const theirs = await q(view, "tasksWithDataEntriesForUser", { user: ironman, size: 5, knownVersion: "" });
    const all = await q(view, "allTasksWithDataEntries", { size: 5, knownVersion: "" });
    const { globalPosition: elsewhere } = await call(broker, "task.create", { id: `kept-other-${view}`, sourceReference: source, taskDefinitionKey: "kept", candidateGroups: ["avengers"] });
    expect(await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, knownVersion: first.version, minPosition: elsewhere })).toEqual({ unchanged: true, version: first.version });
    expect(await q(view, "dataEntriesForUser", { user: kermit, size: 5, knownVersion: entries.version })).toEqual({ unchanged: true, version: entries.version });
    const theirsNow = await q(view, "tasksWithDataEntriesForUser", { user: ironman, size: 5, knownVersion: theirs.version });
    expect(theirsNow.unchanged).toBeUndefined();
    expect(theirsNow.totalElementCount).toBe(theirs.totalElementCount + 1);
    // A question not confined to one user's view has the view's version: any event moves it.
    expect((await q(view, "allTasksWithDataEntries", { size: 5, knownVersion: all.version, minPosition: elsewhere })).unchanged).toBeUndefined();
    // A task kermit may see: a new version for kermit.
    const { globalPosition } = await call(broker, "task.create", { id: `kept-${view}`, sourceReference: source, taskDefinitionKey: "kept", candidateUsers: ["kermit"] });
    const second = await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, knownVersion: first.version, minPosition: globalPosition });
    expect(second.unchanged).toBeUndefined();
    expect(second.version).not.toBe(first.version);
    expect(second.totalElementCount).toBe(first.totalElementCount + 1);
    expect(await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, knownVersion: "1:not-a-token" })).toMatchObject({ version: second.version });
    // ... and so is one kermit could see before and no longer can.
    const { globalPosition: gone } = await call(broker, "task.deleteCandidateUsers", { id: `kept-${view}`, candidateUsers: ["kermit"] });
    const third = await q(view, "tasksWithDataEntriesForUser", { user: kermit, size: 5, knownVersion: second.version, minPosition: gone });
    expect(third.unchanged).toBeUndefined();
    expect(third.totalElementCount).toBe(first.totalElementCount);
    // The tasks reached every view before the next test counts anything.
    for (const each of VIEWS) await q(each, "allTasks", { size: 1, minPosition: gone });
  });
});

describe.each(VIEWS)("replay on %s", (view) => {
  it("rebuilds identical documents in a new generation while the old one keeps answering", async () => {
    const queries: [string, object][] = [
      ["allTasksWithDataEntries", {}],
      ["dataEntries", {}],
      ["processInstancesByState", { states: ["RUNNING", "SUSPENDED", "FINISHED", "CANCELLED"] }],
      ["processVariablesForInstance", { processInstanceId: "pi-1" }],
      ["processDefinitionsStartableByUser", { user: users.piggy }],
    ];
    const before = await Promise.all(queries.map(([query, params]) => q(view, query, params)));
    const { generation } = await call(broker, `${view}.position`);
    const totalBefore = (await q(view, "allTasks")).totalElementCount;

    const started = await call(broker, `${view}.replay`);
    expect(started).toMatchObject({ status: "running", generation: generation + 1 });
    const counts: number[] = [];
    const done = await waitFor(async () => {
      counts.push((await q(view, "allTasks", { size: 1 })).totalElementCount);
      const status = await call(broker, `${view}.replayStatus`);
      return status.status === "done" ? status : undefined;
    }, 60_000, 5);
    expect(new Set(counts)).toEqual(new Set([totalBefore]));
    expect(done).toMatchObject({ percent: 100, generation: generation + 1 });
    expect(done.eventsApplied).toBeGreaterThan(50);
    expect(done.eventsPerSecond).toBeGreaterThan(0);
    expect((await call(broker, `${view}.position`)).generation).toBe(generation + 1);
    // What a node starting now reads: the stored meta names the new generation, even with no event since.
    const stored = await (broker.getLocalService(view) as unknown as { store: { getMeta(id: string): Promise<{ generation: number } | null> } }).store.getMeta("view");
    expect(stored?.generation).toBe(generation + 1);

    const after = await Promise.all(queries.map(([query, params]) => q(view, query, params)));
    expect(after).toEqual(before);
  });
});
