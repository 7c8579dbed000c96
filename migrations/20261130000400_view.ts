// The PostgreSQL view (VIEW_STORE=postgres): its meta table and the three sort-key functions every ordered view
// query and every sort index uses. The document tables themselves belong to a generation of the view
// (tasks_g1, data_entries_g1, …) and are created and dropped by the view store as replays come and go
// (view/stores/postgres-store.ts).
//
// The sort keys order values as MongoDB (and the embedded store) do, so that the three stores agree: missing and
// null first, then numbers by value, strings by code point, objects, arrays, booleans.
import type { Knex } from "knex";

export const name = "20261130000400_view";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE view_meta (id text PRIMARY KEY, doc jsonb NOT NULL)`);
  await knex.raw(`
    CREATE FUNCTION view_rank(value jsonb) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE jsonb_typeof(value) WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'object' THEN 3
                                      WHEN 'array' THEN 4 WHEN 'boolean' THEN 5 ELSE 0 END $$`);
  await knex.raw(`
    CREATE FUNCTION view_number(value jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric END $$`);
  await knex.raw(`
    CREATE FUNCTION view_text(value jsonb) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE jsonb_typeof(value) WHEN 'string' THEN value #>> '{}' WHEN 'number' THEN NULL
                                      WHEN 'null' THEN NULL ELSE value::text END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION view_text(jsonb)`);
  await knex.raw(`DROP FUNCTION view_number(jsonb)`);
  await knex.raw(`DROP FUNCTION view_rank(jsonb)`);
  await knex.raw(`DROP TABLE view_meta`);
}
