// The PostgreSQL view's migrations, in order, recorded in `view_migrations` in the view's own schema.
import type { Migration } from "../stores/database.ts";
import * as view from "./20261130000400_view.ts";

export const viewMigrations: Migration[] = [view];

export const viewMigrationsTable = "view_migrations";
