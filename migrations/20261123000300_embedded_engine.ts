// The embedded BPMN engine's state (stores/engine/embedded-engine.ts): deployments with their resources and
// the process definitions they made (versions per key), process instances with the bpmn-engine state of the
// running ones, user tasks and external (service) tasks, and the history the engine connector reads as change
// feeds — task ends, instance starts and ends, variable updates, suspensions. Every time is the engine's own
// clock as ISO-8601 UTC text with milliseconds (`2026-11-23T19:59:36.120Z`), which sorts like the instant.
import type { Knex } from "knex";

export const name = "20261123000300_embedded_engine";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE engine_deployments (
      id              text PRIMARY KEY,
      name            text NOT NULL,
      deployment_time text NOT NULL
    )`);
  await knex.raw(`CREATE INDEX engine_deployments_time ON engine_deployments (deployment_time)`);
  await knex.raw(`
    CREATE TABLE engine_resources (
      deployment_id text NOT NULL REFERENCES engine_deployments (id),
      name          text NOT NULL,
      content       text NOT NULL,
      hash          text NOT NULL,
      PRIMARY KEY (deployment_id, name)
    )`);
  await knex.raw(`
    CREATE TABLE engine_definitions (
      id                       text PRIMARY KEY,
      key                      text NOT NULL,
      version                  integer NOT NULL,
      name                     text,
      version_tag              text,
      description              text,
      deployment_id            text NOT NULL REFERENCES engine_deployments (id),
      resource_name            text NOT NULL,
      start_form_key           text,
      startable_in_tasklist    boolean NOT NULL DEFAULT true,
      candidate_starter_users  jsonb NOT NULL DEFAULT '[]',
      candidate_starter_groups jsonb NOT NULL DEFAULT '[]',
      suspended                boolean NOT NULL DEFAULT false,
      serialized_source        text NOT NULL,
      UNIQUE (key, version)
    )`);
  await knex.raw(`CREATE INDEX engine_definitions_deployment ON engine_definitions (deployment_id)`);
  await knex.raw(`
    CREATE TABLE engine_instances (
      id                text PRIMARY KEY,
      definition_id     text NOT NULL REFERENCES engine_definitions (id),
      definition_key    text NOT NULL,
      business_key      text,
      state             text NOT NULL,
      start_time        text NOT NULL,
      end_time          text,
      start_activity_id text,
      delete_reason     text,
      variables         jsonb NOT NULL DEFAULT '{}',
      variable_meta     jsonb NOT NULL DEFAULT '{}',
      engine_state      jsonb,
      revision          integer NOT NULL DEFAULT 0
    )`);
  await knex.raw(`CREATE INDEX engine_instances_started ON engine_instances (start_time)`);
  await knex.raw(`CREATE INDEX engine_instances_ended ON engine_instances (end_time) WHERE end_time IS NOT NULL`);
  await knex.raw(`CREATE INDEX engine_instances_running ON engine_instances (id) WHERE end_time IS NULL`);
  await knex.raw(`
    CREATE TABLE engine_tasks (
      id                  text PRIMARY KEY,
      instance_id         text NOT NULL REFERENCES engine_instances (id),
      definition_id       text NOT NULL,
      definition_key      text NOT NULL,
      execution_id        text NOT NULL,
      task_definition_key text NOT NULL,
      name                text,
      description         text,
      form_key            text,
      assignee            text,
      owner               text,
      priority            integer NOT NULL DEFAULT 50,
      create_time         text NOT NULL,
      last_updated        text,
      change_time         text NOT NULL,
      due_date            text,
      follow_up_date      text,
      candidate_users     jsonb NOT NULL DEFAULT '[]',
      candidate_groups    jsonb NOT NULL DEFAULT '[]',
      local_variables     jsonb NOT NULL DEFAULT '{}',
      suspended           boolean NOT NULL DEFAULT false,
      status              text NOT NULL,
      end_time            text,
      delete_reason       text
    )`);
  await knex.raw(`CREATE INDEX engine_tasks_open ON engine_tasks (change_time) WHERE status = 'open'`);
  await knex.raw(`CREATE INDEX engine_tasks_ended ON engine_tasks (end_time) WHERE status <> 'open'`);
  await knex.raw(`CREATE INDEX engine_tasks_instance ON engine_tasks (instance_id)`);
  await knex.raw(`
    CREATE TABLE engine_external_tasks (
      id              text PRIMARY KEY,
      instance_id     text NOT NULL REFERENCES engine_instances (id),
      definition_id   text NOT NULL,
      definition_key  text NOT NULL,
      execution_id    text NOT NULL,
      activity_id     text NOT NULL,
      topic           text NOT NULL,
      local_variables jsonb NOT NULL DEFAULT '{}',
      create_time     text NOT NULL,
      status          text NOT NULL,
      retries         integer,
      retry_at        text,
      lock_until      text,
      worker_id       text,
      error_message   text,
      error_details   text,
      incident_time   text,
      end_time        text
    )`);
  await knex.raw(`CREATE INDEX engine_external_tasks_open ON engine_external_tasks (topic, create_time) WHERE status = 'open'`);
  await knex.raw(`CREATE INDEX engine_external_tasks_instance ON engine_external_tasks (instance_id)`);
  await knex.raw(`
    CREATE TABLE engine_variable_updates (
      seq                  bigserial PRIMARY KEY,
      id                   text NOT NULL UNIQUE,
      time                 text NOT NULL,
      instance_id          text NOT NULL,
      definition_id        text NOT NULL,
      definition_key       text NOT NULL,
      variable_instance_id text NOT NULL,
      name                 text NOT NULL,
      revision             integer NOT NULL,
      kind                 text NOT NULL,
      type                 text NOT NULL,
      value                jsonb,
      task_id              text,
      activity_instance_id text
    )`);
  await knex.raw(`CREATE INDEX engine_variable_updates_time ON engine_variable_updates (time, seq)`);
  await knex.raw(`
    CREATE TABLE engine_operations (
      id             text PRIMARY KEY,
      time           text NOT NULL,
      instance_id    text NOT NULL,
      definition_key text NOT NULL,
      operation      text NOT NULL
    )`);
  await knex.raw(`CREATE INDEX engine_operations_time ON engine_operations (time)`);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    "engine_operations",
    "engine_variable_updates",
    "engine_external_tasks",
    "engine_tasks",
    "engine_instances",
    "engine_definitions",
    "engine_resources",
    "engine_deployments",
  ]) {
    await knex.raw(`DROP TABLE IF EXISTS ${table}`);
  }
}
