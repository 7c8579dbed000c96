// The migrations of the example application "Request Approval", in order, recorded in their own table
// `approval_migrations`, so that they never mix with another owner's in a shared database.
import type { Migration } from "../../../stores/database.ts";
import * as approval from "./20261123000200_approval.ts";

export const approvalMigrations: Migration[] = [approval];

export const approvalMigrationsTable = "approval_migrations";
