// The example process application "Request Approval" (application `example-process-approval`, process
// `process_approve_request`): the names its BPMN, its services and the task pool share, the audit points of
// the process and what each does to the request's data entry, and the connector's enrichment (variable filters
// and correlations, polyflow.md §5.1). Both engine modes (Operaton and embedded) use exactly this.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { EnrichmentConfig } from "../../engine/connector/enrichment.ts";
import { processAttributesOf } from "../../domain/engine/bpmn-process-attributes.ts";
import type { ProcessingType } from "../../domain/data-entry.ts";
import type { BpmnResource } from "../../engine/connector/process-engine.ts";

export const APPLICATION_NAME = "example-process-approval";
export const PROCESS_KEY = "process_approve_request";
export const BPMN_RESOURCE_NAME = "process_approve_request.bpmn";

const here = dirname(fileURLToPath(import.meta.url));
export const BPMN_FILE = join(here, BPMN_RESOURCE_NAME);
export const FORMS_DIR = join(here, "forms");

/** External-task topics the application does. */
export const TOPICS = {
  loadRequest: "approval-load-request",
  audit: "approval-audit",
} as const;

/** User task definition keys. */
export const TASKS = {
  approve: "user_approve_request",
  amend: "user_amend_request",
} as const;

export const FORM_KEYS = {
  start: "start-approval",
  approve: "approve-request",
  amend: "amend-request",
  /** The data entry's form: the request's page. */
  request: "approval-request",
} as const;

export const ENTRY_TYPES = {
  request: "io.taskpool.example.ApprovalRequest",
  user: "io.taskpool.example.User",
} as const;

/** Human-readable type of the request's data entry. */
export const REQUEST_TYPE_NAME = "Approval Request";

/** Process variables. */
export const VARIABLES = {
  request: "request",
  originator: "originator",
  applicant: "applicant",
  subject: "subject",
  amount: "amount",
  currency: "currency",
  approveDecision: "approveDecision",
  amendAction: "amendAction",
  comment: "comment",
  approvalDueDate: "approvalDueDate",
  /** Local input parameter of the audit tasks. */
  auditState: "auditState",
} as const;

export const DECISIONS = ["APPROVE", "REJECT", "RETURN"] as const;
export type Decision = (typeof DECISIONS)[number];
export const AMEND_ACTIONS = ["RESUBMIT", "CANCEL"] as const;
export type AmendAction = (typeof AMEND_ACTIONS)[number];

/**
 * Who decides on requests: the approve task's candidates in the BPMN. They are authorized on the request's data
 * entry from its submission on, so that the request shows next to the task they are offered (the original
 * authorized only the users who acted, which hides the request from the approvers until they decide).
 */
export const APPROVERS = { users: ["fozzy", "gonzo"], groups: ["muppetshow"] } as const;

export type AuditState = "Submitted" | "Approved" | "Rejected" | "Returned" | "Resubmitted" | "Cancelled";

export interface AuditPoint {
  processingType: ProcessingType;
  /** Protocol message. */
  log: string;
  /** The user task whose completer acted (null: the originator, who started the process). */
  actingTask: string | null;
  /** Whether the approvers get (or keep) access to the request from here on. */
  authorizeApprovers: boolean;
}

/** The request's life, as the audit tasks of the process report it. */
export const AUDIT_POINTS: Record<AuditState, AuditPoint> = {
  Submitted: { processingType: "IN_PROGRESS", log: "Request submitted", actingTask: null, authorizeApprovers: true },
  Approved: { processingType: "COMPLETED", log: "Request approved", actingTask: TASKS.approve, authorizeApprovers: false },
  Rejected: { processingType: "COMPLETED", log: "Request rejected", actingTask: TASKS.approve, authorizeApprovers: false },
  Returned: { processingType: "IN_PROGRESS", log: "Request returned for amendment", actingTask: TASKS.approve, authorizeApprovers: false },
  Resubmitted: { processingType: "IN_PROGRESS", log: "Request amended and resubmitted", actingTask: TASKS.amend, authorizeApprovers: true },
  Cancelled: { processingType: "CANCELLED", log: "Request cancelled", actingTask: TASKS.amend, authorizeApprovers: false },
};

export function isAuditState(value: unknown): value is AuditState {
  return typeof value === "string" && Object.hasOwn(AUDIT_POINTS, value);
}

/**
 * The engine connector's enrichment for this application (Polyflow's RequestApprovalProcessConfiguration):
 * - payload: the approve task gets `request` and `originator`, the amend task `request`, `comment` and
 *   `applicant` (the process-wide `request` is in both lists: filters of one process must all admit a variable,
 *   so a separate process-wide INCLUDE would empty the task lists); `amount` is excluded everywhere — for this
 *   process (also from its reported process variables) and, as a global filter, for any other;
 * - correlations: every task of the process correlates to the request's data entry through `request`, the
 *   approve task also to its originator's `io.taskpool.example.User` entry.
 */
export const approvalEnrichment: EnrichmentConfig = {
  variableFilters: [
    {
      kind: "task",
      processDefinitionKey: PROCESS_KEY,
      mode: "INCLUDE",
      tasks: {
        [TASKS.approve]: [VARIABLES.request, VARIABLES.originator],
        [TASKS.amend]: [VARIABLES.request, VARIABLES.comment, VARIABLES.applicant],
      },
    },
    { kind: "process", processDefinitionKey: PROCESS_KEY, mode: "EXCLUDE", variables: [VARIABLES.amount] },
    { kind: "process", processDefinitionKey: null, mode: "EXCLUDE", variables: [VARIABLES.amount] },
  ],
  correlations: [
    {
      processDefinitionKey: PROCESS_KEY,
      global: [{ variable: VARIABLES.request, entryType: ENTRY_TYPES.request }],
      tasks: {
        [TASKS.approve]: [{ variable: VARIABLES.originator, entryType: ENTRY_TYPES.user }],
      },
    },
  ],
};

let bpmnCache: string | null = null;

/** The process's BPMN, read once. */
export function approvalBpmn(): BpmnResource {
  bpmnCache ??= readFileSync(BPMN_FILE, "utf8");
  return { name: BPMN_RESOURCE_NAME, content: bpmnCache };
}

/** Who may start the process, as its BPMN says (`camunda:candidateStarterUsers/Groups`). */
export function starters(): { users: string[]; groups: string[] } {
  const attributes = processAttributesOf(approvalBpmn().content, PROCESS_KEY);
  if (!attributes) throw new Error(`${BPMN_FILE} has no process "${PROCESS_KEY}"`);
  return { users: attributes.candidateStarterUsers, groups: attributes.candidateStarterGroups };
}
