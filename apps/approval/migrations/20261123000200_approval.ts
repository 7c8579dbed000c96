// The example application "Request Approval": its requests (the business objects the process approves) and
// each request's history as the application saw it (one row per audit point of the process, keyed by the
// external task that reported it, so that a task done twice records once). Prefixed `approval_`, so that the
// tables can share a database with the platform's.
import type { Knex } from "knex";

export const name = "20261123000200_approval";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE approval_requests (
      id                  text PRIMARY KEY,
      subject             text NOT NULL,
      applicant           text NOT NULL,
      amount              numeric(16, 2) NOT NULL,
      currency            text NOT NULL,
      originator          text NOT NULL,
      status              text NOT NULL,
      process_instance_id text,
      revision            integer NOT NULL DEFAULT 1,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`CREATE INDEX approval_requests_originator ON approval_requests (originator, created_at DESC)`);
  await knex.raw(`CREATE INDEX approval_requests_applicant ON approval_requests (applicant, created_at DESC)`);
  await knex.raw(`
    CREATE TABLE approval_request_log (
      request_id      text NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
      event_key       text NOT NULL,
      time            timestamptz NOT NULL,
      status          text NOT NULL,
      processing_type text NOT NULL,
      username        text,
      log             text,
      log_notes       text,
      PRIMARY KEY (request_id, event_key)
    )`);
  await knex.raw(`CREATE INDEX approval_request_log_time ON approval_request_log (request_id, time)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE IF EXISTS approval_request_log`);
  await knex.raw(`DROP TABLE IF EXISTS approval_requests`);
}
