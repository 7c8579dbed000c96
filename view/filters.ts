// The one filter and sort language of every view query and every store (docs/filters.md). Filters are strings
// `<field><operator><value>`; they become MongoDB filter documents, which MongoDB and the embedded store (mingo)
// evaluate alike. Anything not understood — an unknown field, an operator a field does not support, a value of
// the wrong type — is refused with the offending filter named, never ignored.
import { encodeKey } from "./documents.ts";
import { FORBIDDEN_KEYS, isCalendarDateTime } from "../domain/calendar.ts";

export type FilterTarget = "task" | "taskWithDataEntries" | "dataEntry";

/** A filter or sort that is refused; `list` and `index` say which one (errors name it by position, not by text). */
export class FilterError extends Error {
  readonly field: string;
  list: "filters" | "sort" = "filters";
  index = 0;
  constructor(field: string, message: string) {
    super(message);
    this.name = "FilterError";
    this.field = field;
  }
}

/** Runs `parse` on each item of a filter or sort list; a refusal records which item it was. */
function eachItem<T>(items: readonly string[], list: "filters" | "sort", parse: (item: string) => T): T[] {
  return items.map((item, index) => {
    try {
      return parse(item);
    } catch (err) {
      if (err instanceof FilterError) Object.assign(err, { list, index });
      throw err;
    }
  });
}

type Kind = "string" | "number" | "date" | "list" | "text" | "payload";
type Operator = "=" | "%" | "<" | ">" | "[]";

interface FieldSpec {
  path: string;
  kind: Kind;
}

const TASK_FIELDS: Record<string, FieldSpec> = {
  id: { path: "id", kind: "string" },
  name: { path: "name", kind: "string" },
  description: { path: "description", kind: "string" },
  assignee: { path: "assignee", kind: "string" },
  owner: { path: "owner", kind: "string" },
  businessKey: { path: "businessKey", kind: "string" },
  formKey: { path: "formKey", kind: "string" },
  taskDefinitionKey: { path: "taskDefinitionKey", kind: "string" },
  processName: { path: "processName", kind: "string" },
  applicationName: { path: "applicationName", kind: "string" },
  priority: { path: "priority", kind: "number" },
  createTime: { path: "createTime", kind: "date" },
  dueDate: { path: "dueDate", kind: "date" },
  followUpDate: { path: "followUpDate", kind: "date" },
  candidateUsers: { path: "candidateUsers", kind: "list" },
  candidateGroups: { path: "candidateGroups", kind: "list" },
  textSearch: { path: "", kind: "text" },
};

const DATA_FIELDS: Record<string, FieldSpec> = {
  entryType: { path: "entryType", kind: "string" },
  entryId: { path: "entryId", kind: "string" },
  type: { path: "type", kind: "string" },
  name: { path: "name", kind: "string" },
  description: { path: "description", kind: "string" },
  applicationName: { path: "applicationName", kind: "string" },
  formKey: { path: "formKey", kind: "string" },
  "state.state": { path: "state.state", kind: "string" },
  "state.processingType": { path: "state.processingType", kind: "string" },
  createdDate: { path: "createdDate", kind: "date" },
  lastModifiedDate: { path: "lastModifiedDate", kind: "date" },
  textSearch: { path: "", kind: "text" },
};

const OPERATORS: Record<Kind, Operator[]> = {
  string: ["=", "%", "<", ">", "[]"],
  number: ["=", "<", ">", "[]"],
  date: ["=", "<", ">", "[]"],
  list: ["=", "%"],
  text: ["%"],
  payload: ["=", "%", "<", ">", "[]"],
};

export type MongoFilter = Record<string, unknown>;

export interface ParsedFilters {
  /** Conditions on the queried documents (tasks or data entries). */
  where: MongoFilter[];
  /** Task queries with data entries: conditions a correlated data entry must meet (data.* filters). */
  dataWhere: MongoFilter[];
}

interface Criterion {
  field: string;
  operator: Operator;
  condition: MongoFilter;
  onData: boolean;
}

const FILTER = /^([A-Za-z0-9_][A-Za-z0-9_.:-]*)(\[\]|=|%|<|>)(.*)$/s;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function contains(text: string) {
  return { $regex: escapeRegex(text), $options: "i" };
}

function asDate(raw: string, filter: string): string {
  if (!DATE.test(raw) || !isCalendarDateTime(raw)) throw new FilterError(filter, `"${raw}" in filter "${filter}" is not an ISO-8601 date`);
  return new Date(raw).toISOString();
}

function asNumber(raw: string, filter: string): number {
  if (!NUMBER.test(raw.trim())) throw new FilterError(filter, `"${raw}" in filter "${filter}" is not a number`);
  return Number(raw);
}

function typed(kind: Kind, raw: string, filter: string): unknown {
  if (kind === "number") return asNumber(raw, filter);
  if (kind === "date") return asDate(raw, filter);
  return raw;
}

/** The values a payload's `=` may match: a typed value and its text, since senders store either. */
function payloadAlternatives(raw: string): unknown[] {
  if (raw === "null") return [null];
  if (raw === "true" || raw === "false") return [raw === "true", raw];
  if (NUMBER.test(raw.trim())) return [Number(raw), raw];
  if (DATE.test(raw) && !Number.isNaN(Date.parse(raw))) return [...new Set([raw, new Date(raw).toISOString()])];
  return [raw];
}

/** A payload comparison value: a number when it reads as one, an ISO date when it reads as one, else text. */
function payloadOrdered(raw: string): unknown {
  if (NUMBER.test(raw.trim())) return Number(raw);
  if (DATE.test(raw) && !Number.isNaN(Date.parse(raw))) return new Date(raw).toISOString();
  return raw;
}

function condition(spec: FieldSpec, operator: Operator, raw: string, filter: string): MongoFilter {
  const { path, kind } = spec;
  if (kind === "text") {
    return { $or: ["name", "description", "processName"].map((f) => ({ [f]: contains(raw) })) };
  }
  if (kind === "list") {
    return { [path]: operator === "=" ? raw : contains(raw) };
  }
  if (operator === "%") return { [path]: contains(raw) };
  if (operator === "[]") {
    const parts = raw.split("|");
    if (parts.length !== 2) throw new FilterError(filter, `filter "${filter}" needs a range "from|to"`);
    const [from, to] = kind === "payload" ? parts.map(payloadOrdered) : parts.map((p) => typed(kind, p, filter));
    return { [path]: { $gte: from, $lte: to } };
  }
  if (operator === "=") {
    if (raw === "null") return { [path]: null };
    if (kind === "payload") {
      const values = payloadAlternatives(raw);
      return { [path]: values.length === 1 ? values[0] : { $in: values } };
    }
    return { [path]: typed(kind, raw, filter) };
  }
  const value = kind === "payload" ? payloadOrdered(raw) : typed(kind, raw, filter);
  return { [path]: { [operator === "<" ? "$lt" : "$gt"]: value } };
}

function payloadPath(path: string, filter: string): string {
  const segments = path.split(".");
  if (segments.some((s) => s === "")) throw new FilterError(filter, `"${path}" in filter "${filter}" is not a payload path`);
  // A path through __proto__ & co. would address the prototype in the embedded store's evaluation (mingo).
  if (segments.some((s) => FORBIDDEN_KEYS.has(s))) throw new FilterError(filter, `a payload path may not use __proto__, constructor or prototype`);
  return `payload.${segments.map(encodeKey).join(".")}`;
}

function resolve(field: string, target: FilterTarget, filter: string): { spec: FieldSpec; onData: boolean } {
  if (field.startsWith("task.")) {
    if (target === "dataEntry") throw new FilterError(filter, `filter "${filter}": data entry queries have no task.* fields`);
    const spec = TASK_FIELDS[field.slice(5)];
    if (!spec) throw new FilterError(filter, `filter "${filter}": unknown task field "${field.slice(5)}"; known: ${Object.keys(TASK_FIELDS).join(", ")}`);
    return { spec, onData: false };
  }
  if (field.startsWith("data.")) {
    if (target === "task") throw new FilterError(filter, `filter "${filter}": data.* filters need a query with data entries`);
    const spec = DATA_FIELDS[field.slice(5)];
    if (!spec) throw new FilterError(filter, `filter "${filter}": unknown data entry field "${field.slice(5)}"; known: ${Object.keys(DATA_FIELDS).join(", ")}`);
    return { spec, onData: target === "taskWithDataEntries" };
  }
  return { spec: { path: payloadPath(field, filter), kind: "payload" }, onData: false };
}

/**
 * Parses filters for a query. Criteria on the same field with the same operator are alternatives (OR); all
 * others must hold together (AND) — so `task.dueDate>…` with `task.dueDate<…` is a range.
 */
export function parseFilters(filters: string[] | undefined, target: FilterTarget): ParsedFilters {
  const criteria = eachItem(filters ?? [], "filters", (filter): Criterion => {
    const match = FILTER.exec(filter);
    if (!match) {
      throw new FilterError(filter, `filter "${filter}" is not "<field><operator><value>" with an operator of =, %, <, >, []`);
    }
    const [, field, operator, raw] = match as unknown as [string, string, Operator, string];
    const { spec, onData } = resolve(field, target, filter);
    if (!OPERATORS[spec.kind].includes(operator)) {
      throw new FilterError(filter, `filter "${filter}": operator ${operator} does not apply to ${field} (allowed: ${OPERATORS[spec.kind].join(" ")})`);
    }
    return { field, operator, condition: condition(spec, operator, raw, filter), onData };
  });
  const groups = new Map<string, Criterion[]>();
  for (const c of criteria) {
    const key = `${c.field}\u0000${c.operator}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const where: MongoFilter[] = [];
  const dataWhere: MongoFilter[] = [];
  for (const group of groups.values()) {
    const combined = group.length === 1 ? group[0]!.condition : { $or: group.map((c) => c.condition) };
    (group[0]!.onData ? dataWhere : where).push(combined);
  }
  return { where, dataWhere };
}

export type SortSpec = [string, 1 | -1][];

const SORT = /^([+-]?)([A-Za-z0-9_][A-Za-z0-9_.:-]*)$/;

/** `+field` / `-field` (no sign: ascending), several in order; ties always break on the document id. */
export function parseSort(sort: string[] | undefined, target: "task" | "dataEntry", fallback: string): SortSpec {
  const fields = sort && sort.length > 0 ? sort : [fallback];
  const spec: SortSpec = eachItem(fields, "sort", (item): [string, 1 | -1] => {
    const match = SORT.exec(item.trim());
    if (!match) throw new FilterError(item, `sort "${item}" is not "+field" or "-field"`);
    const [, sign, field] = match as unknown as [string, string, string];
    const direction = sign === "-" ? -1 : 1;
    let path: string | undefined;
    if (field.startsWith("payload.")) path = payloadPath(field.slice(8), item);
    else {
      const table = target === "task" ? TASK_FIELDS : DATA_FIELDS;
      const prefix = target === "task" ? "task." : "data.";
      const name = field.startsWith(prefix) ? field.slice(prefix.length) : field;
      const known = table[name];
      if (!known || known.kind === "text" || known.kind === "list") {
        throw new FilterError(item, `sort "${item}": unknown field "${field}"; use ${prefix}<field> or payload.<path>`);
      }
      path = known.path;
    }
    return [path, direction];
  });
  if (!spec.some(([path]) => path === "_id")) spec.push(["_id", 1]);
  return spec;
}

/**
 * All of the conditions. Written as one flat document where no two conditions name the same key (MongoDB means
 * the same; FerretDB 1.x pushes only flat filters down to PostgreSQL), with $and only for those that would clash.
 */
export function and(conditions: MongoFilter[]): MongoFilter {
  const parts = conditions.filter((c) => Object.keys(c).length > 0);
  const flat: MongoFilter = {};
  const rest: MongoFilter[] = [];
  for (const part of parts) {
    if (Object.keys(part).some((key) => key in flat)) rest.push(part);
    else Object.assign(flat, part);
  }
  if (rest.length === 0) return flat;
  const nested = (flat.$and as MongoFilter[] | undefined) ?? [];
  return { ...flat, $and: [...nested, ...rest] };
}
