// The engine connector's migrations, in order (a static list, like the event store's), applied with the
// migrations table `connector_migrations` so that they never mix with another owner's in a shared database.
import type { Migration } from "../stores/database.ts";
import * as engineConnector from "./20261123000100_engine_connector.ts";

export const engineConnectorMigrations: Migration[] = [engineConnector];

export const engineConnectorMigrationsTable = "connector_migrations";
