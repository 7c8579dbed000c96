// Tracking processors: one row per named processor with its token, its lease (owner and expiry, judged by the
// database clock so that node clocks do not matter) and its state; and the events a processor parked.
import type { Knex } from "knex";

export const name = "20261123000002_processors";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE processors (
      name            text PRIMARY KEY,
      token           text NOT NULL DEFAULT '0:0',
      global_position bigint NOT NULL DEFAULT 0,
      owner           text,
      lease_until     timestamptz,
      status          text NOT NULL DEFAULT 'idle',
      last_error      text,
      updated_at      timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`
    CREATE TABLE parked_events (
      processor       text NOT NULL,
      global_position bigint NOT NULL,
      stream_id       text NOT NULL,
      stream_version  bigint NOT NULL,
      event_type      text NOT NULL,
      error           text NOT NULL,
      attempts        integer NOT NULL,
      parked_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (processor, global_position)
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE IF EXISTS parked_events`);
  await knex.raw(`DROP TABLE IF EXISTS processors`);
}
