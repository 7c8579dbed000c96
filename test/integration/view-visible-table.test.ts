// The PostgreSQL view answers the plain task list — a user's page in the default order and its total — from its
// visible table (view/stores/postgres-store.ts, issue 10): the narrow (principal, sort key, id) table must always
// hold exactly the live documents' principals and current sort keys — after inserts, principal changes, changed
// sort keys (of every JSON type, missing and null included), deletions and re-creations — so the fast page and
// count equal the answers over the documents for every user and every page. Also: tables written by an earlier
// version (with only a principal → id table) get it filled once when opened. On the real PostgreSQL and on PGlite.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pageQuery, PostgresViewStore } from "../../view/stores/postgres-store.ts";
import type { Doc } from "../../view/stores/store.ts";
import { dropSchema, testDatabaseUrl, unique } from "../helpers.ts";

const USERS = ["user:kermit", "user:piggy", "user:gonzo", "user:fozzy"];
const GROUPS = ["group:muppetshow", "group:avengers", "group:management"];

/** A sort key of any type the view orders (mostly dates, some equal ones, and every other JSON type). */
function randomKey(random: () => number): unknown {
  const pick = random();
  if (pick < 0.6) return new Date(1_700_000_000_000 + Math.floor(random() * 1e9)).toISOString();
  if (pick < 0.7) return "2026-01-01T00:00:00.000Z";
  if (pick < 0.78) return Math.floor(random() * 10) - 5;
  if (pick < 0.84) return null;
  if (pick < 0.9) return undefined;
  if (pick < 0.94) return random() < 0.5;
  if (pick < 0.97) return { at: Math.floor(random() * 3) };
  return [Math.floor(random() * 3)];
}

/** A random document: 0–3 principals, sometimes deleted, its sort key under `field`. */
function randomDoc(id: string, random: () => number, field = "createTime"): Doc {
  const all = [...USERS, ...GROUPS];
  const principals = all.filter(() => random() < 0.3);
  const deleted = random() < 0.15;
  const doc: Doc = { _id: id, deleted, authorizedPrincipals: deleted ? [] : principals, name: `Task ${id}` };
  const key = randomKey(random);
  if (key !== undefined) doc[field] = key;
  // Orders with a sort index of their own (walked by a user's page when the count is capped), of every type too.
  const due = randomKey(random);
  if (due !== undefined) doc.dueDate = due;
  if (random() < 0.8) doc.priority = Math.floor(random() * 5);
  return doc;
}

/** A small deterministic generator, so a failure can be replayed. */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

const visibleTo = (principals: string[]) => ({ deleted: false, authorizedPrincipals: { $in: principals } });
const questions = [[USERS[0]!, GROUPS[0]!], [USERS[1]!], [USERS[2]!, GROUPS[1]!, GROUPS[2]!], [GROUPS[2]!], ["user:nobody"]];

/** With `everyOrder`, also the orders a capped page walks by their sort index (on three of the pages). */
async function expectAnswersAgree(store: PostgresViewStore, collection: string, field = "createTime", everyOrder = false): Promise<void> {
  const docs = store.collection(collection);
  const sort: [string, 1 | -1][] = [[field, -1], ["_id", 1]];
  for (const principals of questions) {
    const fast = await docs.count(visibleTo(principals));
    // The same question with an extra condition that holds for every document takes the documents' path.
    const everyDoc = { ...visibleTo(principals), name: { $ne: "never" } };
    const slow = await docs.count(everyDoc);
    const all = await docs.find(visibleTo(principals));
    expect(fast, `count for ${principals.join(",")}`).toBe(slow);
    expect(fast).toBe(all.length);
    for (const [skip, limit] of [[0, 50], [0, 7], [7, 7], [40, 25], [fast - 3, 10], [fast + 5, 10]] as const) {
      if (skip < 0) continue;
      const page = await docs.find(visibleTo(principals), { sort, skip, limit });
      const expected = await docs.find(everyDoc, { sort, skip, limit });
      expect(page.map((d) => d._id), `page ${skip}+${limit} for ${principals.join(",")}`).toEqual(expected.map((d) => d._id));
      // The page with its total in one statement, on the visible path and on the documents' (one scan of what the
      // principals see, in another order too): the same documents, and the total exact or, past a cap, above it.
      const byName: [string, 1 | -1][] = [["name", 1], [field, -1], ["_id", 1]];
      const walked: [string, 1 | -1][][] = [
        [[field, 1], ["_id", 1]],
        [["dueDate", 1], ["_id", 1]],
        [["dueDate", -1], ["_id", 1]],
        [["priority", -1], [field, 1], ["_id", 1]],
      ];
      const everyLowPriority = { ...everyDoc, priority: { $lt: 3 } };
      const walk = everyOrder && (skip === 7 || skip === fast - 3);
      const cases = [
        [visibleTo(principals), sort],
        [everyDoc, sort],
        [everyDoc, byName],
        ...(walk ? walked.map((order) => [everyDoc, order] as const) : []),
        ...(walk ? walked.map((order) => [everyLowPriority, order] as const) : []),
      ] as const;
      for (const [filter, order] of cases) {
        const matching = filter === everyLowPriority ? await docs.count(filter) : fast;
        const wanted = (await docs.find(filter, { sort: order, skip, limit })).map((d) => d._id);
        const whole = await docs.page(filter, { sort: order, skip, limit });
        expect(whole.docs.map((d) => d._id), `page with total ${skip}+${limit} for ${principals.join(",")}`).toEqual(wanted);
        expect(whole.total).toBe(matching);
        // A total the caller knows (kept while the view has not moved) is not counted again: the same page.
        const knownTotal = await docs.page(filter, { sort: order, skip, limit, knownTotal: 7777, countCap: 5 });
        expect(knownTotal.docs.map((d) => d._id)).toEqual(wanted);
        expect([7777, skip + wanted.length]).toContain(knownTotal.total);
        for (const cap of new Set([1, 5, 20, matching - 1, matching, matching + 1, fast - 1, fast, fast + 1].filter((c) => c > 0))) {
          const capped = await docs.page(filter, { sort: order, skip, limit, countCap: cap });
          const label = `${JSON.stringify(order)} ${skip}+${limit} capped at ${cap} for ${principals.join(",")}`;
          expect(capped.docs.map((d) => d._id), label).toEqual(wanted);
          if (matching <= cap) expect(capped.total, label).toBe(matching);
          else expect(capped.total, label).toBeGreaterThan(cap);
        }
      }
    }
  }
}

describe.each([
  ["PostgreSQL", true],
  ["PGlite", false],
] as const)("visible table on %s", (_name, server) => {
  const schema = unique("vpc").toLowerCase();
  const pgliteDir = server ? null : mkdtempSync(join(tmpdir(), "taskpool-vpc-"));
  const open = () => PostgresViewStore.open({ url: server ? testDatabaseUrl() : null, pgliteDir, schema });
  let store: PostgresViewStore;

  afterAll(async () => {
    await store?.close();
    if (server) await dropSchema(schema);
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
  });

  it("answers pages and counts as the documents do through inserts, principal and key changes, deletions and re-creations", async () => {
    store = await open();
    const tasks = store.collection("tasks_g1");
    await tasks.ensureIndexes([]);
    const random = generator(42);
    const ids = Array.from({ length: 300 }, (_, i) => `t${i}`);
    await tasks.write(ids.map((id) => randomDoc(id, random)));
    await expectAnswersAgree(store, "tasks_g1", "createTime", true);
    // Ten rounds of rewriting a random third of the documents: principals gained and lost, deleted, back again.
    for (let round = 0; round < 10; round++) {
      await tasks.write(ids.filter(() => random() < 0.33).map((id) => randomDoc(id, random)));
      await expectAnswersAgree(store, "tasks_g1", "createTime", round % 5 === 4);
    }
    // Principals kept and the sort key changed: the document moves in its principals' ranges.
    const [moved] = await tasks.byIds(["t2"]);
    const fastPage = async () => (await tasks.find(visibleTo([USERS[0]!]), { sort: [["createTime", -1], ["_id", 1]], limit: 1000 })).map((d) => d._id);
    await tasks.write([{ ...moved!, deleted: false, authorizedPrincipals: [USERS[0]!], createTime: "1999-01-01T00:00:00.000Z" }]);
    const early = (await fastPage()).indexOf("t2");
    await tasks.write([{ ...moved!, deleted: false, authorizedPrincipals: [USERS[0]!], createTime: "2099-01-01T00:00:00.000Z" }]);
    const late = (await fastPage()).indexOf("t2");
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(early);
    await expectAnswersAgree(store, "tasks_g1");
    // A document whose principals and key do not change costs the visible table nothing and keeps its rows.
    const [kept] = await tasks.byIds(["t1"]);
    await tasks.write([{ ...kept!, name: "renamed" }]);
    await expectAnswersAgree(store, "tasks_g1");
    // Dropping a generation drops its visible table with it.
    await store.drop(["tasks_g1"]);
    const [left] = await store.rows<{ found: string | null }>(`SELECT to_regclass('"tasks_g1_visible"') AS found`, []);
    expect(left!.found).toBeNull();
  });

  it("keeps the data entries' visible table in their order (last modification), which changes with every update", async () => {
    const entries = store.collection("dataEntries_g1");
    await entries.ensureIndexes([]);
    const random = generator(99);
    const ids = Array.from({ length: 200 }, (_, i) => `e${i}`);
    await entries.write(ids.map((id) => randomDoc(id, random, "lastModifiedDate")));
    for (let round = 0; round < 5; round++) {
      await entries.write(ids.filter(() => random() < 0.5).map((id) => randomDoc(id, random, "lastModifiedDate")));
      await expectAnswersAgree(store, "dataEntries_g1", "lastModifiedDate", round === 4);
    }
  });

  it("walks a sort index for the page of a user who sees more than the cap, and leaves a rare match to the one scan", async () => {
    const tasks = store.collection("tasks_g3");
    await tasks.ensureIndexes([]);
    // 400 tasks kermit may see, due on distinct days; every fourth urgent, the last one rare.
    const day = 86_400_000;
    await tasks.write(
      Array.from({ length: 400 }, (_, i) => ({
        _id: `w${String(i).padStart(3, "0")}`,
        deleted: false,
        authorizedPrincipals: ["user:kermit"],
        dueDate: new Date(1_800_000_000_000 + (400 - i) * day).toISOString(),
        urgent: i % 4 === 0,
        rare: i === 7,
      })),
    );
    await store.rows(`ANALYZE "tasks_g3"`, []);
    const planOf = async (filter: Record<string, unknown>): Promise<string> => {
      const { sql, bindings } = pageQuery("tasks_g3", filter, { sort: [["dueDate", 1], ["_id", 1]], limit: 10, countCap: 50 });
      const rows = await store.rows<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, COSTS OFF) ${sql}`, bindings);
      return rows.map((row) => row["QUERY PLAN"]).join("\n");
    };
    const urgent = { ...visibleTo(["user:kermit"]), urgent: true };
    // Due soonest first: the last ids. The walk finds ten urgent ones among the first 40 rows; the count stops at 51.
    const page = await tasks.page(urgent, { sort: [["dueDate", 1], ["_id", 1]], limit: 10, countCap: 50 });
    expect(page.docs.map((d) => d._id)).toEqual(["w396", "w392", "w388", "w384", "w380", "w376", "w372", "w368", "w364", "w360"]);
    expect(page.total).toBe(51);
    expect(await planOf(urgent)).toMatch(/CTE Scan on matched[^\n]*never executed/);
    // One match among 400: the walk ends without a page, and the one scan answers — exactly.
    const rare = { ...visibleTo(["user:kermit"]), rare: true };
    const found = await tasks.page(rare, { sort: [["dueDate", 1], ["_id", 1]], limit: 10, countCap: 50 });
    expect(found.docs.map((d) => d._id)).toEqual(["w007"]);
    expect(found.total).toBe(1);
    expect(await planOf(rare)).not.toMatch(/CTE Scan on matched[^\n]*never executed/);
    // Exact counts (no cap): always the one scan, which reads what the total needs anyway.
    const exact = await tasks.page(urgent, { sort: [["dueDate", 1], ["_id", 1]], limit: 10 });
    expect(exact.docs).toEqual(page.docs);
    expect(exact.total).toBe(100);
    // A later page with the total known: walked the same way, not counted.
    const next = await tasks.page(urgent, { sort: [["dueDate", 1], ["_id", 1]], skip: 10, limit: 10, countCap: 50, knownTotal: 51 });
    expect(next.docs.map((d) => d._id)).toEqual(["w356", "w352", "w348", "w344", "w340", "w336", "w332", "w328", "w324", "w320"]);
    expect(next.total).toBe(51);
  });

  it("fills the visible table once for a table written before it existed, and drops the earlier principal table", async () => {
    const tasks = store.collection("tasks_g2");
    await tasks.ensureIndexes([]);
    const random = generator(7);
    await tasks.write(Array.from({ length: 100 }, (_, i) => randomDoc(`old${i}`, random)));
    // As an earlier version left it: the documents and a (principal, id) table, no visible table.
    await store.rows(`DROP TABLE "tasks_g2_visible"`, []);
    await store.rows(`CREATE TABLE "tasks_g2_by_principal" (principal text, id text, PRIMARY KEY (principal, id))`, []);
    await store.close();
    store = await open();
    await store.collection("tasks_g2").ensureIndexes([]);
    await expectAnswersAgree(store, "tasks_g2");
  });
});
