// The PostgreSQL view counts a user's tasks from its principal table (stores/postgres-view-store.ts, issue 10):
// the narrow (principal, id) table must always hold exactly the live documents' principals — after inserts,
// principal changes, deletions, re-creations and several writes of one document in one chunk's neighbours — so
// the fast count equals the count over the documents for every user. Also: tables written by an earlier version
// (without the principal table) get it filled once when opened. On the real PostgreSQL and on PGlite.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostgresViewStore } from "../../stores/postgres-view-store.ts";
import type { Doc } from "../../stores/view-store.ts";
import { dropSchema, testDatabaseUrl, unique } from "../helpers.ts";

const USERS = ["user:kermit", "user:piggy", "user:gonzo", "user:fozzy"];
const GROUPS = ["group:muppetshow", "group:avengers", "group:management"];

/** A random task document: 0–3 principals, sometimes deleted. */
function randomDoc(id: string, random: () => number): Doc {
  const all = [...USERS, ...GROUPS];
  const principals = all.filter(() => random() < 0.3);
  const deleted = random() < 0.15;
  return { _id: id, deleted, authorizedPrincipals: deleted ? [] : principals, name: `Task ${id}`, createTime: new Date(1_700_000_000_000 + Math.floor(random() * 1e9)).toISOString() };
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

async function expectCountsAgree(store: PostgresViewStore, collection: string): Promise<void> {
  const tasks = store.collection(collection);
  for (const principals of questions) {
    const fast = await tasks.count(visibleTo(principals));
    // The same question with an extra condition that holds for every document takes the documents' count.
    const slow = await tasks.count({ ...visibleTo(principals), name: { $ne: "never" } });
    const docs = await tasks.find(visibleTo(principals));
    expect(fast, `count for ${principals.join(",")}`).toBe(slow);
    expect(fast).toBe(docs.length);
  }
}

describe.each([
  ["PostgreSQL", true],
  ["PGlite", false],
] as const)("principal count on %s", (_name, server) => {
  const schema = unique("vpc").toLowerCase();
  const pgliteDir = server ? null : mkdtempSync(join(tmpdir(), "taskpool-vpc-"));
  const open = () => PostgresViewStore.open({ url: server ? testDatabaseUrl() : null, pgliteDir, schema });
  let store: PostgresViewStore;

  afterAll(async () => {
    await store?.close();
    if (server) await dropSchema(schema);
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
  });

  it("equals the documents' count through inserts, principal changes, deletions and re-creations", async () => {
    store = await open();
    const tasks = store.collection("tasks_g1");
    await tasks.ensureIndexes([]);
    const random = generator(42);
    const ids = Array.from({ length: 300 }, (_, i) => `t${i}`);
    await tasks.write(ids.map((id) => randomDoc(id, random)));
    await expectCountsAgree(store, "tasks_g1");
    // Ten rounds of rewriting a random third of the documents: principals gained and lost, deleted, back again.
    for (let round = 0; round < 10; round++) {
      await tasks.write(ids.filter(() => random() < 0.33).map((id) => randomDoc(id, random)));
      await expectCountsAgree(store, "tasks_g1");
    }
    // A document whose principals do not change costs the principal table nothing and keeps its rows.
    const [kept] = await tasks.byIds(["t1"]);
    await tasks.write([{ ...kept!, name: "renamed" }]);
    await expectCountsAgree(store, "tasks_g1");
    // Dropping a generation drops its principal table with it.
    await store.drop(["tasks_g1"]);
    const [left] = await store.rows<{ found: string | null }>(`SELECT to_regclass('"tasks_g1_by_principal"') AS found`, []);
    expect(left!.found).toBeNull();
  });

  it("fills the principal table once for a table written before it existed", async () => {
    const tasks = store.collection("tasks_g2");
    await tasks.ensureIndexes([]);
    const random = generator(7);
    await tasks.write(Array.from({ length: 100 }, (_, i) => randomDoc(`old${i}`, random)));
    // As an earlier version left it: the documents, no principal table.
    await store.rows(`DROP TABLE "tasks_g2_by_principal"`, []);
    await store.close();
    store = await open();
    await store.collection("tasks_g2").ensureIndexes([]);
    await expectCountsAgree(store, "tasks_g2");
  });
});
