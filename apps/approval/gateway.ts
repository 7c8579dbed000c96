// The HTTP side of the example application "Request Approval" (approval.service.ts is its Moleculer
// shell): its REST API on APP_PORT under /api, as the original example's — start a request, read requests, the
// approve and amend task forms' data and submits; Swagger UI at /swagger-ui/ and the OpenAPI document; the
// plain-HTML forms at /forms/ (the platform's form URLs point there). One table per route of the gateway
// (gateway/route-table.ts): each row is served and, with a description, documented from the params of the action
// behind it, which also validate.
import { createRequire } from "node:module";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "moleculer";
import serveStatic from "serve-static";
import { checkInput, sendHtml, type GatedRequest } from "../../gateway/gateway-security.ts";
import { openApiDocument } from "../../gateway/openapi.ts";
import { aliasesOf, openApiRoutesOf, type TableRoute } from "../../gateway/route-table.ts";
import { AMEND_ACTIONS, DECISIONS, FORMS_DIR } from "./process.ts";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const SWAGGER_UI_DIR = dirname(require.resolve("swagger-ui-dist/package.json"));
const SWAGGER_INDEX = join(here, "swagger-ui.html");
/** The platform pages' sign-in and DOM module (public/assets/page.js), the one file served to the forms as /forms/shared/page.js. */
const SHARED_ASSETS_DIR = join(here, "..", "..", "public", "assets");
const SHARED_FILES = new Set(["/page.js"]);

// ---- params ----

const userName = { type: "string", min: 1, max: 300, trim: true };
const draftProps = {
  subject: { type: "string", min: 1, max: 300, trim: true, description: "What is requested" },
  applicant: { ...userName, description: "For whom (a user name)" },
  amount: { type: "number", positive: true, max: 1e12, description: "Amount, at most two decimals are kept" },
  currency: { type: "string", uppercase: true, trim: true, pattern: /^[A-Z]{3}$/, description: "ISO 4217 code, e.g. EUR" },
};
const draft = { type: "object", strict: "remove", props: draftProps };
const byId = { type: "object", props: { id: { type: "string", min: 1, max: 300 } } };
const comment = { type: "string", max: 10_000, optional: true, nullable: true, description: "Comment for the originator / the approvers" };

/** The params of the application's actions (fastest-validator), by action name. */
export const ACTION_PARAMS = {
  startRequest: { body: draft },
  getRequest: { params: byId },
  approveForm: { params: byId },
  approveSubmit: {
    params: byId,
    body: { type: "object", strict: "remove", props: { decision: { type: "enum", values: [...DECISIONS], description: "APPROVE, REJECT or RETURN" }, comment } },
  },
  amendForm: { params: byId },
  amendSubmit: {
    params: byId,
    body: {
      type: "object",
      strict: "remove",
      props: {
        action: { type: "enum", values: [...AMEND_ACTIONS], description: "RESUBMIT (with the amended request) or CANCEL" },
        approvalRequest: { ...draft, optional: true, description: "The amended request (required to resubmit)" },
        comment,
      },
    },
  },
};

// ---- the routes ----

const request = { type: "object", description: "An approval request: id, subject, applicant, amount, currency, originator, status, processInstanceId, revision, createdAt, updatedAt" };
const noTask = { description: "No such open task for the user" };
const claimed = { description: "Claimed by someone else" };

/** Routes open to anonymous callers. */
const PUBLIC_ROUTES: TableRoute[] = [
  { method: "GET", path: "/api/environment", action: "approval.environment", doc: { tag: "environment", summary: "Application name, task list URL and users", authenticated: false, responses: { 200: { description: "{ applicationName, tasklistUrl, users }" } } } },
  { method: "GET", path: "/api/openapi.json", action: "approval.openapi" },
  {
    method: "GET",
    path: "/",
    handler(_req: IncomingMessage, res: ServerResponse) {
      res.writeHead(302, { Location: "/forms/" });
      res.end();
    },
  },
  {
    method: "GET",
    path: "/swagger-ui/",
    handler(_req: IncomingMessage, res: ServerResponse) {
      sendHtml(res, SWAGGER_INDEX);
    },
  },
];

/** The REST API: authenticated callers only. */
const REST_ROUTES: TableRoute[] = [
  { method: "POST", path: "/api/request", action: "approval.startRequest", doc: { tag: "requests", summary: "Submit a request: starts its approval", authenticated: true, responses: { 201: { description: "The request", schema: request }, 403: { description: "The user may not start approvals" } } } },
  { method: "GET", path: "/api/request", action: "approval.listRequests", doc: { tag: "requests", summary: "The requests the user submitted or applies for", authenticated: true, responses: { 200: { description: "Requests", schema: { type: "array", items: request } } } } },
  { method: "GET", path: "/api/request/:id", action: "approval.getRequest", doc: { tag: "requests", summary: "One request with its history", authenticated: true, responses: { 200: { description: "The request", schema: request }, 404: { description: "Not found (or not visible to the user)" } } } },
  { method: "GET", path: "/api/approve-request/id/:id", action: "approval.approveForm", doc: { tag: "approve task", summary: "Form data of an approve task", authenticated: true, responses: { 200: { description: "{ task, approvalRequest }" }, 404: noTask } } },
  { method: "POST", path: "/api/approve-request/id/:id", action: "approval.approveSubmit", doc: { tag: "approve task", summary: "Decide: completes the approve task", authenticated: true, responses: { 204: { description: "Completed" }, 404: noTask, 409: claimed } } },
  { method: "GET", path: "/api/amend-request/id/:id", action: "approval.amendForm", doc: { tag: "amend task", summary: "Form data of an amend task", authenticated: true, responses: { 200: { description: "{ task, approvalRequest, comment }" }, 404: noTask } } },
  {
    method: "POST",
    path: "/api/amend-request/id/:id",
    action: "approval.amendSubmit",
    doc: { tag: "amend task", summary: "Resubmit the amended request or cancel it: completes the amend task", authenticated: true, responses: { 204: { description: "Completed" }, 404: noTask, 409: claimed } },
  },
];

const documents = new Map<string, ReturnType<typeof openApiDocument>>();

/** The application's OpenAPI document (built once per application name). */
export function approvalOpenApi(applicationName: string): ReturnType<typeof openApiDocument> {
  const known = documents.get(applicationName);
  if (known) return known;
  const document = openApiDocument(
    {
      title: "Request Approval API",
      version: "1.0.0",
      description: `The example process application ${applicationName}: submit requests, and the data and submits of its task forms. Authenticate as on the platform: a Bearer JWT, or X-Current-User-ID where the development header is enabled. Errors are \`{ type, message, data }\`.`,
    },
    openApiRoutesOf([...PUBLIC_ROUTES, ...REST_ROUTES], (action) => ACTION_PARAMS[action.replace(/^approval\./, "") as keyof typeof ACTION_PARAMS]),
  );
  documents.set(applicationName, document);
  return document;
}

type ErrorHandler = (req: IncomingMessage, res: ServerResponse, err: Error) => void;
type ParamsRequest = GatedRequest & { query?: unknown; $params?: { body?: unknown; query?: unknown; params?: unknown } };

const checkParams = (_ctx: Context, _route: unknown, req: ParamsRequest) => checkInput(req.$params && "body" in req.$params ? req.$params : { query: req.query });
type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
/** A route serving a folder's files; `only`: just these paths of it (the rest is not found). */
const files = (name: string, path: string, dir: string, index: false | string[], only?: Set<string>) => {
  const serve: Middleware = serveStatic(dir, { index });
  const use: Middleware = only ? (req, res, next) => (only.has((req.url ?? "").split("?")[0]!) ? serve(req, res, next) : next()) : serve;
  return { name, path, mappingPolicy: "restrict", use: [use], aliases: {} };
};

/**
 * The links of the platform's task list to the forms (the task, start and request forms), which the service
 * announces in its metadata (`formUrls`, gateway/tasklist-dto.ts). The forms take the user from `?userId=`, which
 * the task list fills in (`%userId%`), as Polyflow's example forms do.
 */
export function approvalFormUrls(port: number) {
  const forms = `http://localhost:${port}/forms/#`;
  return { task: `${forms}/tasks/\${formKey}/\${id}?userId=%userId%`, process: `${forms}/start?userId=%userId%`, dataEntry: `${forms}/approval-request/\${entryId}?userId=%userId%` };
}

/** The application's moleculer-web routes; `onError` answers a route's errors (called with the service as `this`). */
export function approvalRoutes(onError: ErrorHandler): object[] {
  return [
    { name: "approval-public", path: "/", mappingPolicy: "restrict", authentication: false, bodyParsers: false, onBeforeCall: checkParams, aliases: aliasesOf(PUBLIC_ROUTES), onError },
    {
      name: "approval-rest",
      path: "/api",
      mappingPolicy: "restrict",
      authentication: true,
      mergeParams: false,
      bodyParsers: { json: { strict: false, limit: "256kb" } },
      onBeforeCall: checkParams,
      // The route sits under /api: its aliases without it.
      aliases: aliasesOf(REST_ROUTES, (path) => [path.replace(/^\/api/, "")]),
      onError,
    },
    // The platform pages' credentials and DOM helper (public/assets/page.js), which the forms import: that file only.
    files("approval-forms-shared", "/forms/shared", SHARED_ASSETS_DIR, false, SHARED_FILES),
    files("approval-forms", "/forms", FORMS_DIR, ["index.html"]),
    files("approval-swagger-ui", "/swagger-ui", SWAGGER_UI_DIR, false),
  ];
}

/** moleculer-web's settings of the application's gateway (port and address aside). */
export function approvalGatewaySettings(onError: ErrorHandler) {
  return { logRequest: "debug", logResponse: "debug", log4XXResponses: false, logRouteRegistration: "debug", routes: approvalRoutes(onError), onError };
}
