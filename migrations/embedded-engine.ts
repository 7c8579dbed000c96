// The embedded engine's migrations, in order (a static list, like the event store's), applied with the
// migrations table `engine_migrations` so that they never mix with another owner's in a shared database.
import type { Migration } from "../stores/database.ts";
import * as embeddedEngine from "./20261123000300_embedded_engine.ts";

export const embeddedEngineMigrations: Migration[] = [embeddedEngine];

export const embeddedEngineMigrationsTable = "engine_migrations";
