// The event store: streams with their versions, events with a global position and the id of the writing
// transaction (the read barrier of stores/event-store.ts), command ids for idempotent appends, and the
// batch append function that checks versions before any position is drawn.
import type { Knex } from "knex";

export const name = "20261123000001_event_store";

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE SEQUENCE event_global_position AS bigint`);
  await knex.raw(`
    CREATE TABLE streams (
      stream_id      text PRIMARY KEY,
      stream_version bigint NOT NULL CHECK (stream_version >= 0),
      created_at     timestamptz NOT NULL DEFAULT now(),
      updated_at     timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`
    CREATE TABLE events (
      global_position bigint      NOT NULL DEFAULT nextval('event_global_position'),
      transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
      stream_id       text        NOT NULL,
      stream_version  bigint      NOT NULL,
      event_id        uuid        NOT NULL,
      event_type      text        NOT NULL,
      schema_version  integer     NOT NULL,
      data            jsonb       NOT NULL,
      metadata        jsonb       NOT NULL,
      command_id      text,
      recorded_at     timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (stream_id, stream_version)
    )`);
  await knex.raw(`CREATE UNIQUE INDEX events_global_position ON events (global_position)`);
  await knex.raw(`CREATE INDEX events_transaction_position ON events (transaction_id, global_position)`);
  await knex.raw(`
    CREATE TABLE commands (
      command_id      text PRIMARY KEY,
      stream_id       text NOT NULL,
      stream_version  bigint NOT NULL,
      global_position bigint NOT NULL,
      recorded_at     timestamptz NOT NULL DEFAULT now()
    )`);
  // One row per append of the batch, in the order given. Outcomes: appended, duplicate (the command id was
  // seen: the first result is returned), conflict (stream_version is then the current version).
  await knex.raw(`
    CREATE FUNCTION append_to_streams(batch jsonb)
    RETURNS TABLE (idx integer, outcome text, stream_version bigint, global_position bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      item jsonb;
      i integer := -1;
      v_stream text;
      v_expected bigint;
      v_command text;
      v_events jsonb;
      v_count integer;
      v_version bigint;
      v_position bigint;
    BEGIN
      -- Lock every stream of the batch before the first write. The transaction id (the delivery order of the
      -- global log) is assigned at the first write, so taking all locks first makes the transaction ids of
      -- appends to one stream increase with its versions: a reader never gets version n+1 before version n.
      -- Advisory locks need no transaction id; sorting them avoids deadlocks between batches.
      PERFORM pg_advisory_xact_lock(h)
         FROM (SELECT DISTINCT hashtextextended(value->>'streamId', 0) AS h FROM jsonb_array_elements(batch)) locks
        ORDER BY h;
      FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        i := i + 1;
        v_stream := item->>'streamId';
        v_expected := (item->>'expectedVersion')::bigint;
        v_command := item->>'commandId';
        v_events := item->'events';
        v_count := jsonb_array_length(v_events);

        IF v_command IS NOT NULL THEN
          INSERT INTO commands (command_id, stream_id, stream_version, global_position)
          VALUES (v_command, v_stream, 0, 0) ON CONFLICT DO NOTHING;
          IF NOT FOUND THEN
            SELECT c.stream_version, c.global_position INTO v_version, v_position
              FROM commands c WHERE c.command_id = v_command;
            idx := i; outcome := 'duplicate'; stream_version := v_version; global_position := v_position;
            RETURN NEXT;
            CONTINUE;
          END IF;
        END IF;

        IF v_expected IS NULL THEN
          INSERT INTO streams AS s (stream_id, stream_version) VALUES (v_stream, v_count)
          ON CONFLICT (stream_id) DO UPDATE SET stream_version = s.stream_version + v_count, updated_at = now()
          RETURNING s.stream_version INTO v_version;
        ELSIF v_expected = 0 THEN
          INSERT INTO streams (stream_id, stream_version) VALUES (v_stream, v_count) ON CONFLICT DO NOTHING;
          v_version := CASE WHEN FOUND THEN v_count END;
        ELSE
          UPDATE streams s SET stream_version = v_expected + v_count, updated_at = now()
           WHERE s.stream_id = v_stream AND s.stream_version = v_expected;
          v_version := CASE WHEN FOUND THEN v_expected + v_count END;
        END IF;

        IF v_version IS NULL THEN
          IF v_command IS NOT NULL THEN
            DELETE FROM commands WHERE command_id = v_command;
          END IF;
          SELECT s.stream_version INTO v_version FROM streams s WHERE s.stream_id = v_stream;
          idx := i; outcome := 'conflict'; stream_version := coalesce(v_version, 0); global_position := NULL;
          RETURN NEXT;
          CONTINUE;
        END IF;

        WITH inserted AS (
          INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata, command_id)
          SELECT v_stream, v_version - v_count + e.k, (e.ev->>'eventId')::uuid, e.ev->>'type',
                 (e.ev->>'schemaVersion')::integer, e.ev->'data', e.ev->'metadata', v_command
            FROM jsonb_array_elements(v_events) WITH ORDINALITY AS e(ev, k)
           ORDER BY e.k
          RETURNING events.global_position
        )
        SELECT max(inserted.global_position) INTO v_position FROM inserted;

        IF v_command IS NOT NULL THEN
          UPDATE commands SET stream_version = v_version, global_position = v_position WHERE command_id = v_command;
        END IF;
        idx := i; outcome := 'appended'; stream_version := v_version; global_position := v_position;
        RETURN NEXT;
      END LOOP;
    END
    $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION IF EXISTS append_to_streams(jsonb)`);
  await knex.raw(`DROP TABLE IF EXISTS commands`);
  await knex.raw(`DROP TABLE IF EXISTS events`);
  await knex.raw(`DROP TABLE IF EXISTS streams`);
  await knex.raw(`DROP SEQUENCE IF EXISTS event_global_position`);
}
