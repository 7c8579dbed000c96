// The requests of the example application "Request Approval" — its business data — in PostgreSQL (PGlite when
// embedded) through knex, with their history as the process reported it; and the data entry each request is
// in the task pool's data pool (name "<subject> for <applicant>", payload {id, applicant, subject, amount,
// currency}, state and protocol from the audit points, the acting users authorized).
//
// An audit point is recorded once per external task (its id is the row's key): when the engine hands the same
// task out again (a lost completion), the stored row — same time, same user — yields the very same
// `dataEntry.createOrUpdate`, whose content-derived command id makes the data pool apply it once.
import { randomUUID } from "node:crypto";
import { DatabaseStore, openDatabase, type Database } from "../../stores/database.ts";
import { approvalMigrations, approvalMigrationsTable } from "./migrations/approval.ts";
import { dataEntryChange, type DataEntryCommandPlan } from "../../domain/engine/data-entry-sender.ts";
import type { AuthorizationChange, ProcessingType } from "../../domain/data-entry.ts";
import { APPLICATION_NAME, APPROVERS, AUDIT_POINTS, ENTRY_TYPES, FORM_KEYS, REQUEST_TYPE_NAME, type AuditState } from "./process.ts";

export interface ApprovalRequestDraft {
  subject: string;
  applicant: string;
  amount: number;
  currency: string;
}

export interface ApprovalRequest extends ApprovalRequestDraft {
  id: string;
  /** Who submitted it (and amends it when it is returned). */
  originator: string;
  /** "Draft" until the process reports its submission, then the last audit state. */
  status: string;
  processInstanceId: string | null;
  /** Grows with every amendment. */
  revision: number;
  createdAt: string;
  updatedAt: string;
}

export interface RequestLogEntry {
  requestId: string;
  /** The external task that reported it (or another unique key of the event). */
  eventKey: string;
  time: string;
  status: string;
  processingType: ProcessingType;
  username: string | null;
  log: string | null;
  logNotes: string | null;
}

export const DRAFT_STATUS = "Draft";

interface RequestRow {
  id: string;
  subject: string;
  applicant: string;
  amount: string | number;
  currency: string;
  originator: string;
  status: string;
  process_instance_id: string | null;
  revision: number;
  created_at: Date | string;
  updated_at: Date | string;
}

interface LogRow {
  request_id: string;
  event_key: string;
  time: Date | string;
  status: string;
  processing_type: ProcessingType;
  username: string | null;
  log: string | null;
  log_notes: string | null;
}

const iso = (value: Date | string): string => new Date(value).toISOString();

function requestOf(row: RequestRow): ApprovalRequest {
  return {
    id: row.id,
    subject: row.subject,
    applicant: row.applicant,
    // numeric comes back as text (exact); the API speaks JSON numbers, and two decimals fit a double exactly enough.
    amount: Number(row.amount),
    currency: row.currency,
    originator: row.originator,
    status: row.status,
    processInstanceId: row.process_instance_id,
    revision: row.revision,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function logEntryOf(row: LogRow): RequestLogEntry {
  return {
    requestId: row.request_id,
    eventKey: row.event_key,
    time: iso(row.time),
    status: row.status,
    processingType: row.processing_type,
    username: row.username,
    log: row.log,
    logNotes: row.log_notes,
  };
}

export interface RequestStoreOptions {
  /** postgres://… ; null opens PGlite. */
  databaseUrl: string | null;
  /** PGlite directory; null keeps it in memory (tests). */
  pgliteDir: string | null;
  /** PostgreSQL schema (default "approval"). */
  schema?: string;
}

export class RequestStore extends DatabaseStore {
  private constructor(database: Database) {
    super(database);
  }

  static async open(options: RequestStoreOptions): Promise<RequestStore> {
    const database = await openDatabase({
      url: options.databaseUrl,
      pgliteDir: options.pgliteDir,
      schema: options.schema ?? "approval",
      migrations: approvalMigrations,
      migrationsTable: approvalMigrationsTable,
      poolMax: 5,
    });
    return new RequestStore(database);
  }


  async create(draft: ApprovalRequestDraft, originator: string, id: string = randomUUID()): Promise<ApprovalRequest> {
    const [row] = await this.knex<RequestRow>("approval_requests")
      .insert({ id, subject: draft.subject, applicant: draft.applicant, amount: draft.amount, currency: draft.currency, originator, status: DRAFT_STATUS })
      .returning("*");
    return requestOf(row as RequestRow);
  }

  /** Removes a request whose process could not be started (nothing else refers to it yet). */
  async discard(id: string): Promise<void> {
    await this.knex("approval_requests").where({ id, status: DRAFT_STATUS }).delete();
  }

  async get(id: string): Promise<ApprovalRequest | null> {
    const row = await this.knex<RequestRow>("approval_requests").where({ id }).first();
    return row ? requestOf(row) : null;
  }

  /** The requests a user submitted or applies for, newest first. */
  async listFor(username: string, limit = 200): Promise<ApprovalRequest[]> {
    const rows = await this.knex<RequestRow>("approval_requests")
      .where({ originator: username })
      .orWhere({ applicant: username })
      .orderBy([
        { column: "created_at", order: "desc" },
        { column: "id", order: "asc" },
      ])
      .limit(limit);
    return rows.map(requestOf);
  }

  async setProcessInstance(id: string, processInstanceId: string): Promise<void> {
    await this.knex("approval_requests").where({ id }).update({ process_instance_id: processInstanceId, updated_at: this.knex.fn.now() });
  }

  /** An amendment: the new content, one revision further. */
  async amend(id: string, draft: ApprovalRequestDraft): Promise<ApprovalRequest | null> {
    const [row] = await this.knex<RequestRow>("approval_requests")
      .where({ id })
      .update({
        subject: draft.subject,
        applicant: draft.applicant,
        amount: draft.amount,
        currency: draft.currency,
        revision: this.knex.raw("revision + 1"),
        updated_at: this.knex.fn.now(),
      } as never)
      .returning("*");
    return row ? requestOf(row as RequestRow) : null;
  }

  /**
   * Records an audit point and moves the request's status — once per event key: a repeated call returns the
   * entry recorded first and changes nothing.
   */
  async recordAudit(entry: Omit<RequestLogEntry, "time"> & { time?: string }): Promise<{ entry: RequestLogEntry; request: ApprovalRequest; recorded: boolean }> {
    return this.knex.transaction(async (trx) => {
      const inserted = await trx<LogRow>("approval_request_log")
        .insert({
          request_id: entry.requestId,
          event_key: entry.eventKey,
          time: entry.time ?? new Date().toISOString(),
          status: entry.status,
          processing_type: entry.processingType,
          username: entry.username,
          log: entry.log,
          log_notes: entry.logNotes,
        })
        .onConflict(["request_id", "event_key"])
        .ignore()
        .returning("*");
      const recorded = inserted.length > 0;
      if (recorded) {
        await trx("approval_requests").where({ id: entry.requestId }).update({ status: entry.status, updated_at: trx.fn.now() });
      }
      const row = recorded ? (inserted[0] as LogRow) : await trx<LogRow>("approval_request_log").where({ request_id: entry.requestId, event_key: entry.eventKey }).first();
      const request = await trx<RequestRow>("approval_requests").where({ id: entry.requestId }).first();
      if (!row || !request) throw new Error(`request ${entry.requestId} vanished while its audit point was recorded`);
      return { entry: logEntryOf(row as LogRow), request: requestOf(request), recorded };
    });
  }

  async history(requestId: string): Promise<RequestLogEntry[]> {
    const rows = await this.knex<LogRow>("approval_request_log").where({ request_id: requestId }).orderBy([{ column: "time" }, { column: "event_key" }]);
    return rows.map(logEntryOf);
  }

  /** The time of the request's last audit point (null: none yet). */
  async lastAuditTime(requestId: string): Promise<string | null> {
    const row = await this.knex("approval_request_log").where({ request_id: requestId }).max({ time: "time" }).first();
    return row?.time ? iso(row.time as Date | string) : null;
  }
}

/** The request as the data pool's payload. */
export function requestPayload(request: ApprovalRequest): { id: string; applicant: string; subject: string; amount: number; currency: string } {
  return { id: request.id, applicant: request.applicant, subject: request.subject, amount: request.amount, currency: request.currency };
}

/**
 * The data entry of a request after an audit point: its content now, the point's state and protocol entry, and
 * the authorizations — the acting user, and the approvers while the request waits for a decision.
 */
export function requestDataEntry(request: ApprovalRequest, entry: RequestLogEntry, state: AuditState): DataEntryCommandPlan {
  const point = AUDIT_POINTS[state];
  const authorizations: AuthorizationChange[] = [];
  if (entry.username) authorizations.push({ kind: "AddUser", name: entry.username });
  if (point.authorizeApprovers) {
    for (const name of APPROVERS.users) if (name !== entry.username) authorizations.push({ kind: "AddUser", name });
    for (const name of APPROVERS.groups) authorizations.push({ kind: "AddGroup", name });
  }
  return dataEntryChange(APPLICATION_NAME, {
    entryType: ENTRY_TYPES.request,
    entryId: request.id,
    type: REQUEST_TYPE_NAME,
    name: `${request.subject} for ${request.applicant}`,
    description: `Requested by ${request.originator}: ${request.amount} ${request.currency}`,
    payload: requestPayload(request),
    state: { processingType: point.processingType, state },
    formKey: FORM_KEYS.request,
    modification: { time: entry.time, username: entry.username, log: entry.log, logNotes: entry.logNotes },
    authorizationChanges: authorizations,
  });
}
