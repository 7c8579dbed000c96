// The event store's migrations, in order (a static list, so they load the same under tsx, vitest and a bundle).
import type { Migration } from "../stores/database.ts";
import * as eventStore from "./20261123000001_event_store.ts";
import * as processors from "./20261123000002_processors.ts";

export const eventStoreMigrations: Migration[] = [eventStore, processors];

export const eventStoreMigrationsTable = "eventstore_migrations";
