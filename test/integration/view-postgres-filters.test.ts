// The PostgreSQL view's translation of long `$in` lists of strings (view/stores/postgres-store.ts, `inStrings`):
// beyond 32 values the store looks the values up in a hashed array instead of one jsonpath alternative per value.
// Both translations must select exactly what MongoDB's `$in` selects — an array field holding one of the values, a
// scalar field equal to one, never a number or an object key — so a long list must answer as the union of short
// ones. On the real PostgreSQL and on PGlite.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostgresViewStore, whereOf } from "../../view/stores/postgres-store.ts";
import type { Doc } from "../../view/stores/store.ts";
import { dropSchema, testDatabaseUrl, unique } from "../helpers.ts";

const docs: Doc[] = Array.from({ length: 120 }, (_, i) => {
  const doc: Doc = { _id: `d${i}`, deleted: false, authorizedPrincipals: [] };
  if (i % 4 === 0) doc.correlationIds = [`c${i}`, `c${i + 1}`];
  else if (i % 4 === 1) doc.correlationIds = `c${i}`;
  else if (i % 4 === 2) doc.correlationIds = { [`c${i}`]: true };
  else doc.correlationIds = i;
  return doc;
});

describe.each([
  ["PostgreSQL", true],
  ["PGlite", false],
] as const)("long $in lists on %s", (_name, server) => {
  const schema = unique("vpf").toLowerCase();
  const pgliteDir = server ? null : mkdtempSync(join(tmpdir(), "taskpool-vpf-"));
  let store: PostgresViewStore;

  afterAll(async () => {
    await store?.close();
    if (server) await dropSchema(schema);
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
  });

  it("selects what the short lists select together", async () => {
    store = await PostgresViewStore.open({ url: server ? testDatabaseUrl() : null, pgliteDir, schema });
    const collection = store.collection("tasks_g1");
    await collection.ensureIndexes([]);
    await collection.write(docs);
    const values = Array.from({ length: 130 }, (_, i) => `c${i}`);
    expect(whereOf({ correlationIds: { $in: values } }).sql).toContain("ANY(");
    const long = (await collection.find({ correlationIds: { $in: values } }, { sort: [["_id", 1]] })).map((d) => d._id);
    const short: string[] = [];
    for (let i = 0; i < values.length; i += 10) {
      const part = values.slice(i, i + 10);
      expect(whereOf({ correlationIds: { $in: part } }).sql).not.toContain("ANY(");
      short.push(...(await collection.find({ correlationIds: { $in: part } })).map((d) => d._id as string));
    }
    expect(long).toEqual([...new Set(short)].sort());
    // Arrays holding a value and scalars equal to one; never an object's key or a number.
    expect(long).toEqual(docs.filter((_, i) => i % 4 === 0 || i % 4 === 1).map((d) => d._id).sort());
    const none = (await collection.find({ correlationIds: { $nin: values } })).map((d) => d._id).sort();
    expect(none).toEqual(docs.filter((_, i) => i % 4 === 2 || i % 4 === 3).map((d) => d._id).sort());
    expect(await collection.count({ correlationIds: { $in: [...values, null] } })).toBe(long.length);
  });
});

describe("the view's connections to a PostgreSQL server", () => {
  const schema = unique("vpj").toLowerCase();
  let store: PostgresViewStore | undefined;

  afterAll(async () => {
    await store?.close();
    await dropSchema(schema);
  });

  it("run without JIT compilation (its cost estimates at a million tasks made every filtered page compile first)", async () => {
    store = await PostgresViewStore.open({ url: testDatabaseUrl(), pgliteDir: null, schema });
    // Several connections of the pool at once: each is set up alike.
    const settings = await Promise.all(Array.from({ length: 4 }, () => store!.knex.transaction(async (trx) => (await trx.raw("SELECT current_setting('jit') AS jit, pg_sleep(0.05)")).rows[0].jit as string)));
    expect(settings).toEqual(["off", "off", "off", "off"]);
  });
});
