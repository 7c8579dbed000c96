// The OpenAPI 3 document of the REST API, generated from the gateway's routes and the fastest-validator params
// of the actions behind them — the schemas are written once, where they validate.

/** A fastest-validator rule, as far as the document reads it. */
interface RuleObject {
  [key: string]: unknown;
  type?: string;
  min?: number;
  max?: number;
  pattern?: RegExp | string;
  integer?: boolean;
  values?: unknown[];
  items?: Rule;
  value?: Rule;
  props?: Record<string, Rule>;
  strict?: boolean | string;
  format?: string;
  nullable?: boolean;
  optional?: boolean;
  default?: unknown;
  description?: string;
}
type Rule = RuleObject | string;

export interface OpenApiRoute {
  method: string;
  /** moleculer-web path, with `:param` segments. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** The action's params: { params?, query?, body? } (the gateway does not merge them). */
  params?: Record<string, Rule>;
  responses: Record<string, { description: string; schema?: Record<string, unknown>; headers?: Record<string, { description: string; schema: object }> }>;
  authenticated: boolean;
  contentType?: string;
}

/** JSON Schema of one fastest-validator rule. */
export function toJsonSchema(rule: Rule): Record<string, unknown> {
  const r: RuleObject = typeof rule === "string" ? { type: rule.replace(/\|optional$/, "") } : rule;
  const schema: Record<string, unknown> = {};
  switch (r.type) {
    case "string":
      schema.type = "string";
      if (r.min !== undefined) schema.minLength = r.min;
      if (r.max !== undefined) schema.maxLength = r.max;
      if (r.pattern) schema.pattern = String(r.pattern instanceof RegExp ? r.pattern.source : r.pattern);
      break;
    case "number":
      schema.type = r.integer ? "integer" : "number";
      if (r.min !== undefined) schema.minimum = r.min;
      if (r.max !== undefined) schema.maximum = r.max;
      break;
    case "boolean":
      schema.type = "boolean";
      break;
    case "enum":
      schema.type = "string";
      schema.enum = r.values;
      break;
    case "array":
      schema.type = "array";
      if (r.items) schema.items = toJsonSchema(r.items);
      if (r.min !== undefined) schema.minItems = r.min;
      if (r.max !== undefined) schema.maxItems = r.max;
      break;
    case "record":
      schema.type = "object";
      schema.additionalProperties = r.value ? toJsonSchema(r.value) : true;
      break;
    case "object": {
      schema.type = "object";
      if (r.props) {
        const { properties, required } = propertiesOf(r.props);
        schema.properties = properties;
        if (required.length > 0) schema.required = required;
        schema.additionalProperties = r.strict === false || r.strict === undefined ? true : false;
      } else {
        schema.additionalProperties = true;
      }
      break;
    }
    case "any":
      if (r.format === "date-time") {
        schema.type = "string";
        schema.format = "date-time";
      }
      break;
    default:
      break;
  }
  if (r.nullable) schema.nullable = true;
  if (r.default !== undefined && typeof r.default !== "function") schema.default = r.default;
  if (r.description) schema.description = r.description;
  return schema;
}

export function propertiesOf(props: Record<string, Rule>): { properties: Record<string, unknown>; required: string[] } {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const [name, rule] of Object.entries(props)) {
    if (name.startsWith("$$")) continue;
    properties[name] = toJsonSchema(rule);
    const optional = typeof rule === "string" ? rule.endsWith("|optional") : rule.optional === true || rule.default !== undefined;
    if (!optional) required.push(name);
  }
  return { properties, required };
}

const ERROR_SCHEMA = {
  type: "object",
  properties: {
    type: { type: "string", example: "VALIDATION_ERROR" },
    message: { type: "string" },
    data: { description: "Details: for VALIDATION_ERROR the list of fields and what is wrong with each" },
  },
  required: ["type", "message"],
};

export function openApiDocument(info: { title: string; version: string; description: string }, routes: OpenApiRoute[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const parameters: unknown[] = [];
    const params = route.params ?? {};
    for (const [location, source] of [
      ["path", params.params],
      ["query", params.query],
    ] as const) {
      if (!source || typeof source === "string" || !source.props) continue;
      for (const [name, rule] of Object.entries(source.props as Record<string, Rule>)) {
        const schema = toJsonSchema(rule);
        const required = location === "path" || !(typeof rule === "object" && (rule.optional || rule.default !== undefined));
        parameters.push({
          name,
          in: location,
          required,
          schema,
          ...(schema.type === "array" ? { style: "form", explode: true } : {}),
          ...(typeof rule === "object" && rule.description ? { description: rule.description } : {}),
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.headers ? { headers: response.headers } : {}),
        ...(response.schema ? { content: { [route.contentType ?? "application/json"]: { schema: response.schema } } } : {}),
      };
    }
    for (const [status, description] of [
      ["400", "Bad input; `data` names the fields"],
      ...(route.authenticated ? [["401", "No or invalid credentials"]] : []),
      ["429", "Too many requests from this client"],
      ["503", "A service behind the API is unavailable, or the view did not catch up in time"],
    ] as const) {
      responses[status] ??= { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
    }
    paths[path] ??= {};
    paths[path]![route.method.toLowerCase()] = {
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      operationId: `${route.method.toLowerCase()}${path.replace(/[{}]/g, "").replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ""))}`,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(params.body ? { requestBody: { required: !(typeof params.body === "object" && params.body.optional), content: { "application/json": { schema: toJsonSchema(params.body) } } } } : {}),
      responses,
      ...(route.authenticated ? { security: [{ currentUser: [] }, { bearer: [] }] } : { security: [] }),
    };
  }
  return {
    openapi: "3.0.3",
    info,
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: {
        currentUser: { type: "apiKey", in: "header", name: "X-Current-User-ID", description: "The id of a user of the directory (demo mode)" },
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
      },
    },
  };
}
