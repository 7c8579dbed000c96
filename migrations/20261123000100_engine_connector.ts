// The engine connector's own state, keyed by application name so that several connectors can share one
// database: per change feed its watermark and de-duplication window, the shadow of every task (what the task
// pool was told), the known process definitions and instances, the interaction events already performed, a
// few markers, and the lease that lets one instance per application poll its engine.
import type { Knex } from "knex";

export const name = "20261123000100_engine_connector";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE connector_feeds (
      application_name text NOT NULL,
      feed             text NOT NULL,
      watermark        text,
      bootstrapped     boolean NOT NULL DEFAULT false,
      updated_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (application_name, feed)
    )`);
  await knex.raw(`
    CREATE TABLE connector_seen (
      application_name text NOT NULL,
      feed             text NOT NULL,
      row_key          text NOT NULL,
      row_time         text NOT NULL,
      PRIMARY KEY (application_name, feed, row_key)
    )`);
  await knex.raw(`CREATE INDEX connector_seen_time ON connector_seen (application_name, feed, row_time)`);
  await knex.raw(`
    CREATE TABLE connector_tasks (
      application_name    text NOT NULL,
      task_id             text NOT NULL,
      status              text NOT NULL,
      process_instance_id text,
      snapshot            jsonb NOT NULL,
      stream_version      bigint NOT NULL DEFAULT 0,
      engine_marker       text,
      updated_at          timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (application_name, task_id)
    )`);
  await knex.raw(`CREATE INDEX connector_tasks_open ON connector_tasks (application_name, status)`);
  await knex.raw(`CREATE INDEX connector_tasks_instance ON connector_tasks (application_name, process_instance_id)`);
  await knex.raw(`
    CREATE TABLE connector_definitions (
      application_name text NOT NULL,
      definition_id    text NOT NULL,
      snapshot         jsonb NOT NULL,
      updated_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (application_name, definition_id)
    )`);
  await knex.raw(`
    CREATE TABLE connector_instances (
      application_name text NOT NULL,
      instance_id      text NOT NULL,
      state            text NOT NULL,
      snapshot         jsonb NOT NULL,
      updated_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (application_name, instance_id)
    )`);
  await knex.raw(`CREATE INDEX connector_instances_state ON connector_instances (application_name, state)`);
  await knex.raw(`
    CREATE TABLE connector_interactions (
      application_name text NOT NULL,
      event_id         text NOT NULL,
      event_type       text NOT NULL,
      outcome          text NOT NULL,
      detail           jsonb NOT NULL DEFAULT '{}',
      handled_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (application_name, event_id)
    )`);
  await knex.raw(`
    CREATE TABLE connector_meta (
      application_name text NOT NULL,
      key              text NOT NULL,
      value            jsonb NOT NULL,
      PRIMARY KEY (application_name, key)
    )`);
  await knex.raw(`
    CREATE TABLE connector_leases (
      application_name text PRIMARY KEY,
      owner            text NOT NULL,
      lease_until      timestamptz NOT NULL
    )`);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ["connector_leases", "connector_meta", "connector_interactions", "connector_instances", "connector_definitions", "connector_tasks", "connector_seen", "connector_feeds"]) {
    await knex.raw(`DROP TABLE IF EXISTS ${table}`);
  }
}
