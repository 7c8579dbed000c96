// The view on PostgreSQL (VIEW_STORE=postgres; on the embedded platform, in the one PGlite database). The view
// service speaks MongoDB filter and sort documents to every store (view/filters.ts); this store translates
// the subset they use into SQL that the planner can serve from indexes:
//
// - one table per collection and generation ("tasks_g1"): the document as jsonb, its id, its `deleted` flag and
//   its authorized principals as a text[] column with a GIN index (the question every task list asks first);
// - `field = value`, `$in` and `null` become jsonpath predicates (`doc @? '$.a[*] ? (@ == "x")'`), which follow
//   MongoDB's array semantics (a value matches an array that holds it) and are served by the GIN index on doc;
//   ranges and `$regex` become jsonpath comparisons, which, like MongoDB, only compare values of one type;
// - sorts use three key functions (migrations/20261130000400_view.ts) that order mixed types as MongoDB does;
//   the default orders of tasks and data entries have btree indexes on exactly those expressions.
//
// Writes are multi-row upserts from one jsonb parameter; `atomically` runs a projection batch and the view's
// token in one transaction.
import { AsyncLocalStorage } from "node:async_hooks";
import type { Knex } from "knex";
import type { SortSpec } from "../filters.ts";
import { openDatabase, type Database } from "../../stores/database.ts";
import { viewMigrations, viewMigrationsTable } from "../../migrations/view.ts";
import type { Doc, Filter, FindOptions, IndexSpec, ViewCollection, ViewStore } from "./store.ts";

export interface PostgresViewStoreOptions {
  /** postgres://… ; null: the embedded PGlite database in `pgliteDir` (null there too: a private one in memory). */
  url: string | null;
  pgliteDir: string | null;
  /** Default "view". */
  schema?: string;
  poolMax?: number;
}

/** Refused by the translator: a filter the PostgreSQL view does not know how to run. */
export class UnsupportedFilterError extends Error {}

// ---- MongoDB filter → SQL --------------------------------------------------------------------------------------

export interface Sql {
  sql: string;
  bindings: Knex.RawBinding[];
}

const COMPARISONS: Record<string, string> = { $gt: ">", $gte: ">=", $lt: "<", $lte: "<=" };

/** A jsonpath literal for a JSON scalar; strings as JSON strings, which jsonpath reads alike. */
function literal(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new UnsupportedFilterError(`${value} cannot be compared`);
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  throw new UnsupportedFilterError(`a filter value must be a string, number, boolean or null, not ${JSON.stringify(value)}`);
}

/** `$."a"."b"`: every key quoted, so that no key can be read as jsonpath syntax. */
function jsonPath(path: string): string {
  return "$" + path.split(".").map((segment) => "." + JSON.stringify(segment)).join("");
}

function exists(path: string, predicate: string): Sql {
  return { sql: `doc @\\? ?::jsonpath`, bindings: [`${jsonPath(path)}[*] ? (${predicate})`] };
}

function isNull(path: string): Sql {
  // MongoDB's {a: null}: a is missing, null, or an array holding null.
  return { sql: `(NOT doc @\\? ?::jsonpath OR doc @\\? ?::jsonpath)`, bindings: [jsonPath(path), `${jsonPath(path)}[*] ? (@ == null)`] };
}

/**
 * Beyond this many values, `$in` of strings is a lookup in a hashed array rather than one jsonpath alternative per
 * value: a filter on data entries becomes `correlationIds $in [thousands of ids]`, which as jsonpath compares every
 * candidate row with every id. Short lists stay jsonpath, which the GIN index on the documents can serve.
 */
const LONG_IN = 32;

function inStrings(path: string, values: string[]): Sql {
  // The path's values (an array's elements, or the value itself, as MongoDB matches), strings among them looked up.
  return {
    sql: `EXISTS (SELECT 1 FROM jsonb_path_query(doc, ?::jsonpath) AS v WHERE jsonb_typeof(v) = 'string' AND (v #>> '{}') = ANY(?::text[]))`,
    bindings: [`${jsonPath(path)}[*]`, values],
  };
}

function not(part: Sql): Sql {
  return { sql: `NOT ${part.sql}`, bindings: part.bindings };
}

function all(parts: Sql[], joiner: "AND" | "OR"): Sql {
  if (parts.length === 0) return { sql: joiner === "AND" ? "true" : "false", bindings: [] };
  if (parts.length === 1) return parts[0]!;
  return { sql: `(${parts.map((p) => p.sql).join(` ${joiner} `)})`, bindings: parts.flatMap((p) => p.bindings) };
}

function regexLiteral(pattern: unknown, options: unknown): string {
  if (typeof pattern !== "string") throw new UnsupportedFilterError("$regex takes a string");
  const flags = typeof options === "string" && options.includes("i") ? ` flag "i"` : "";
  return `@ like_regex ${JSON.stringify(pattern)}${flags}`;
}

function fieldCondition(field: string, condition: unknown): Sql {
  if (field === "_id") {
    if (typeof condition === "string") return { sql: "id = ?", bindings: [condition] };
    const values = (condition as { $in?: unknown[] })?.$in;
    if (Array.isArray(values) && values.every((v) => typeof v === "string")) return { sql: "id = ANY(?::text[])", bindings: [values as string[]] };
    throw new UnsupportedFilterError(`_id takes a string or $in of strings`);
  }
  if (field === "deleted" && typeof condition === "boolean") return { sql: condition ? "deleted" : "NOT deleted", bindings: [] };
  if (field === "authorizedPrincipals") {
    if (typeof condition === "string") return { sql: "principals @> ARRAY[?]::text[]", bindings: [condition] };
    const values = (condition as { $in?: unknown[] })?.$in;
    if (Array.isArray(values) && values.every((v) => typeof v === "string")) return { sql: "principals && ?::text[]", bindings: [values as string[]] };
    throw new UnsupportedFilterError(`authorizedPrincipals takes a string or $in of strings`);
  }
  if (condition === null) return isNull(field);
  if (typeof condition !== "object" || Array.isArray(condition)) return exists(field, `@ == ${literal(condition)}`);
  const operators = condition as Record<string, unknown>;
  const parts: Sql[] = [];
  for (const [operator, value] of Object.entries(operators)) {
    if (operator in COMPARISONS) {
      parts.push(exists(field, `@ ${COMPARISONS[operator]} ${literal(value)}`));
    } else if (operator === "$in" || operator === "$nin") {
      if (!Array.isArray(value)) throw new UnsupportedFilterError(`${operator} takes a list`);
      const values = value.filter((v) => v !== null);
      const alternatives: Sql[] = [];
      if (values.length > LONG_IN && values.every((v) => typeof v === "string")) alternatives.push(inStrings(field, values as string[]));
      else if (values.length > 0) alternatives.push(exists(field, values.map((v) => `@ == ${literal(v)}`).join(" || ")));
      if (values.length < value.length) alternatives.push(isNull(field));
      const any = all(alternatives, "OR");
      parts.push(operator === "$in" ? any : not(any));
    } else if (operator === "$ne") {
      parts.push(not(value === null ? isNull(field) : exists(field, `@ == ${literal(value)}`)));
    } else if (operator === "$eq") {
      parts.push(value === null ? isNull(field) : exists(field, `@ == ${literal(value)}`));
    } else if (operator === "$regex") {
      parts.push(exists(field, regexLiteral(value, operators.$options)));
    } else if (operator === "$options") {
      continue;
    } else {
      throw new UnsupportedFilterError(`operator ${operator} is not supported by the PostgreSQL view`);
    }
  }
  return all(parts, "AND");
}

/** The WHERE clause of a MongoDB filter document (the subset the view's queries produce). */
export function whereOf(filter: Filter): Sql {
  const parts: Sql[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(value)) throw new UnsupportedFilterError(`${key} takes a list`);
      parts.push(all(value.map((item) => whereOf(item as Filter)), key === "$and" ? "AND" : "OR"));
    } else if (key.startsWith("$")) {
      throw new UnsupportedFilterError(`operator ${key} is not supported by the PostgreSQL view`);
    } else {
      parts.push(fieldCondition(key, value));
    }
  }
  return all(parts, "AND");
}

/** The three sort keys of a document path, in MongoDB's order of types. */
export function sortKeys(path: string, doc = "doc"): string[] {
  if (path === "_id") return ["id"];
  const value = `(${doc} #> '{${path.split(".").map((s) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("'", "''")}"`).join(",")}}')`;
  return [`view_rank(${value})`, `view_number(${value})`, `view_text(${value}) COLLATE "C"`];
}

/** ORDER BY terms; ids are never null, so they take no NULLS clause (and match the indexes' `id ASC`). */
function orderTerms(sort: SortSpec): string[] {
  return sort.flatMap(([path, direction]) =>
    path === "_id" ? [`id ${direction === 1 ? "ASC" : "DESC"}`] : sortKeys(path).map((key) => `${key} ${direction === 1 ? "ASC NULLS FIRST" : "DESC NULLS LAST"}`),
  );
}

export function orderByOf(sort: SortSpec | undefined): string {
  const terms = orderTerms(sort ?? []);
  return terms.length > 0 ? ` ORDER BY ${terms.join(", ")}` : "";
}

// ---- tables ----------------------------------------------------------------------------------------------------

/** SQL name of a collection: "dataEntries_g2" → "data_entries_g2". */
export function tableName(collection: string): string {
  const name = collection.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new UnsupportedFilterError(`"${collection}" is not a view collection name`);
  return name;
}

/**
 * Fields with a sort index of their own: the first is the collection's default order (the task list's and the data
 * pool's), its index in exactly that order; the others are the task list's "what is urgent" columns, whose indexes
 * serve a user's page in their order by a bounded walk (`walkedPageQuery`). Every other order is sorted from what
 * the user may see (`matchedPageQuery`).
 */
const SORT_FIELDS: Record<string, string[]> = {
  tasks: ["createTime", "dueDate", "followUpDate", "priority"],
  data_entries: ["lastModifiedDate", "createdDate"],
};

/**
 * The terms of sort index `i` of a collection. The default order's index is the order itself (`-field`, ties by id
 * ascending). The others are `(keys DESC NULLS LAST, id DESC)`: read backwards that is `+field` exactly (ties by id
 * ascending, nulls first, as MongoDB sorts them) and read forwards `-field` up to ties, which an incremental sort
 * orders by id — one index for both directions.
 */
function indexTerms(field: string, i: number): string {
  if (i === 0) return orderTerms([[field, -1], ["_id", 1]]).join(", ");
  return [...sortKeys(field).map((key) => `${key} DESC NULLS LAST`), "id DESC"].join(", ");
}

/**
 * The collections with a table of who may see what, in their default order (see `visibleTable`): the field of
 * that order for each.
 */
const VISIBLE_ORDER: Record<string, string> = Object.fromEntries(Object.entries(SORT_FIELDS).map(([kind, fields]) => [kind, fields[0]!]));

function kindOf(table: string): string {
  return table.replace(/_g\d+$/, "");
}

/**
 * The narrow table of a collection's live documents by authorized principal, in the collection's default order:
 * one row (principal, sort key, id) per principal of each live document. A user's page in the default order is
 * the first rows of each of their principals' ranges, merged; their total an index-only count over the same
 * ranges — neither visits the documents they do not see (docs/view-postgres.md, "The visible table").
 */
function visibleTable(table: string): string | null {
  return kindOf(table) in VISIBLE_ORDER ? `${table}_visible` : null;
}

/**
 * The sort key of a document in its collection's default order, as three non-null columns: the sort-key
 * functions' rank, number and text (within one rank one of the two is always null, so replacing it by a constant
 * keeps the order — and lets a row be found again by equality).
 */
function visibleKeys(table: string, doc: string): string {
  const [rank, number, text] = sortKeys(VISIBLE_ORDER[kindOf(table)]!, doc);
  return `${rank} AS sort_rank, coalesce(${number}, 0) AS sort_number, coalesce(${text.replace(' COLLATE "C"', "")}, '') COLLATE "C" AS sort_text`;
}

const VISIBLE_ORDER_TERMS = `sort_rank DESC, sort_number DESC, sort_text DESC, id`;

export function tableDdl(table: string): string[] {
  const kind = kindOf(table);
  const statements = [
    `CREATE TABLE IF NOT EXISTS "${table}" (
       id text COLLATE "C" PRIMARY KEY,
       doc jsonb NOT NULL,
       deleted boolean NOT NULL DEFAULT false,
       principals text[] NOT NULL DEFAULT '{}'
     )`,
  ];
  // Documents a user may see are found by their principals; the principal changes are found by id (the principal).
  if (kind !== "principal_changes") {
    statements.push(`CREATE INDEX IF NOT EXISTS "${table}_principals" ON "${table}" USING gin (principals) WHERE NOT deleted`);
  }
  if (kind === "tasks" || kind === "data_entries") {
    statements.push(`CREATE INDEX IF NOT EXISTS "${table}_doc" ON "${table}" USING gin (doc jsonb_path_ops) WHERE NOT deleted`);
  }
  (SORT_FIELDS[kind] ?? []).forEach((field, i) => {
    statements.push(`CREATE INDEX IF NOT EXISTS "${table}_sort${i}" ON "${table}" (${indexTerms(field, i)}) WHERE NOT deleted`);
  });
  if (kind === "process_variables") {
    statements.push(`CREATE INDEX IF NOT EXISTS "${table}_instance" ON "${table}" ((doc ->> 'processInstanceId'))`);
  }
  const visible = visibleTable(table);
  if (visible) {
    statements.push(
      `CREATE TABLE IF NOT EXISTS "${visible}" (principal text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL,
         sort_rank int NOT NULL, sort_number numeric NOT NULL, sort_text text COLLATE "C" NOT NULL)`,
      `CREATE UNIQUE INDEX IF NOT EXISTS "${visible}_order" ON "${visible}" (principal, ${VISIBLE_ORDER_TERMS})`,
    );
  }
  return statements;
}

/** The principals a filter requires one of (`authorizedPrincipals: {$in}` at its top or in its top-level `$and`). */
function principalsOf(filter: Filter): string[] | null {
  for (const condition of principalConditions(filter)) {
    if (!condition || typeof condition !== "object" || Object.keys(condition).length !== 1) continue;
    const values = (condition as { $in?: unknown }).$in;
    if (Array.isArray(values) && values.every((v) => typeof v === "string")) return values as string[];
  }
  return null;
}

/** The `authorizedPrincipals` conditions of a filter, at its top and in its top-level `$and`, in that order. */
function principalConditions(filter: Filter): unknown[] {
  const own = "authorizedPrincipals" in filter ? [filter.authorizedPrincipals] : [];
  const parts = Array.isArray(filter.$and) ? (filter.$and as unknown[]) : [];
  return [...own, ...parts.flatMap((part) => (typeof part === "object" && part !== null ? principalConditions(part as Filter) : []))];
}

/**
 * The principals a filter asks about when it is exactly "live and visible to these principals" (the default task
 * list), else null: only that question is answered from the principal table.
 */
function principalsOnly(filter: Filter): string[] | null {
  const keys = Object.keys(filter);
  if (keys.length !== 2 || filter.deleted !== false || !("authorizedPrincipals" in filter)) return null;
  return principalsOf(filter);
}

/**
 * How many documents of `table` match: from the visible table when the filter is the plain "live and visible to"
 * (an index-only count over the principals' key ranges), else over the documents. With a cap, exact up to it and
 * otherwise some number above it, read from at most principals × (cap + 1) index rows: each principal's range is
 * counted up to cap + 1 — one beyond the cap means more documents than the cap — and when none is, the ids of all
 * of them (principals × cap rows at most) are grouped and counted exactly.
 */
export function countQuery(table: string, filter: Filter, cap?: number): Sql {
  const visible = visibleTable(table);
  const principals = visible ? principalsOnly(filter) : null;
  // Grouped rather than count(DISTINCT id): a hash of the ids instead of a sort of them (3.3 → 2.1 ms at 4,122 ids).
  if (visible && principals) {
    const exact = `SELECT count(*) AS n FROM (SELECT id FROM "${visible}" WHERE principal = ANY(?::text[]) GROUP BY id) ids`;
    if (!cap) return { sql: exact, bindings: [principals] };
    const beyond = beyondCap(visible, principals, cap);
    return {
      sql: `SELECT CASE WHEN ${beyond.sql} THEN ? ELSE (SELECT n FROM (${exact}) c) END AS n`,
      bindings: [...beyond.bindings, cap + 1, principals],
    };
  }
  const where = whereOf(filter);
  if (cap) return { sql: `SELECT count(*) AS n FROM (SELECT 1 FROM "${table}" WHERE ${where.sql} LIMIT ?) r`, bindings: [...where.bindings, cap + 1] };
  return { sql: `SELECT count(*) AS n FROM "${table}" WHERE ${where.sql}`, bindings: where.bindings };
}

/**
 * Whether one of the principals sees more than `cap` live documents (then so does a user who has it): each
 * principal's range of the visible table counted index-only up to cap + 1 rows.
 */
function beyondCap(visible: string, principals: string[], cap: number): Sql {
  return {
    sql: `(SELECT max(c.n) FROM unnest(?::text[]) AS p(principal)
             CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM "${visible}" v WHERE v.principal = p.principal LIMIT ?) r) c) > ?`,
    bindings: [principals, cap + 1, cap],
  };
}

/** Whether `sort` is the collection's default order (the order of its visible table), ties broken by id. */
function isVisibleOrder(table: string, sort: SortSpec | undefined): boolean {
  const field = VISIBLE_ORDER[kindOf(table)];
  if (!field || !sort || sort.length === 0 || sort[0]![0] !== field || sort[0]![1] !== -1) return false;
  return sort.length === 1 || (sort.length === 2 && sort[1]![0] === "_id" && sort[1]![1] === 1);
}

/**
 * The SELECT of a page: for the plain task list (live, visible to these principals, default order) the first
 * `skip + limit` rows of each principal's range of the visible table — an index walk that stops after them, however
 * many documents the user may see — merged, de-duplicated (a document visible through two principals has the same
 * key in both) and joined to their documents; anything else runs over the documents. Both order alike.
 */
export function findQuery(table: string, filter: Filter, options: FindOptions = {}): Sql {
  const visible = visibleTable(table);
  const principals = visible && options.limit && isVisibleOrder(table, options.sort) ? principalsOnly(filter) : null;
  if (visible && principals) {
    const skip = options.skip ?? 0;
    return {
      sql: `WITH page AS (
          SELECT DISTINCT v.id, v.sort_rank, v.sort_number, v.sort_text
            FROM unnest(?::text[]) AS p(principal)
            CROSS JOIN LATERAL (SELECT id, sort_rank, sort_number, sort_text FROM "${visible}" WHERE principal = p.principal
                                 ORDER BY ${VISIBLE_ORDER_TERMS} LIMIT ?) v
           ORDER BY ${VISIBLE_ORDER_TERMS} LIMIT ? OFFSET ?)
        SELECT t.doc FROM page JOIN "${table}" t ON t.id = page.id
         ORDER BY page.sort_rank DESC, page.sort_number DESC, page.sort_text DESC, page.id`,
      bindings: [principals, skip + options.limit!, options.limit!, skip],
    };
  }
  const where = whereOf(filter);
  let sql = `SELECT doc FROM "${table}" WHERE ${where.sql}${orderByOf(options.sort)}`;
  const bindings = [...where.bindings];
  if (options.limit) {
    sql += ` LIMIT ?`;
    bindings.push(options.limit);
  }
  if (options.skip) {
    sql += ` OFFSET ?`;
    bindings.push(options.skip);
  }
  return { sql, bindings };
}

/**
 * A page and its total in one statement (one round trip, where a page used to take two): the page's documents as
 * one JSON array in the page's order (the CTE is materialised in that order and aggregated as scanned), and the
 * total — which a short page gives for free (skip + its length) and the count query otherwise; PostgreSQL runs an
 * uncorrelated subquery only when the CASE reaches it.
 */
export function pageQuery(table: string, filter: Filter, options: FindOptions & { limit: number }): Sql {
  // In the indexed default order the page walks its index and the (capped) count stops early, even for a user who
  // may see everything; a user's page in another order, or filtered, reads what the user may see (bounded by the cap
  // where the order has an index: `userPageQuery`).
  const plainList = isVisibleOrder(table, options.sort) && principalsOnly(filter) !== null;
  if (!plainList && restrictedToPrincipals(filter) && options.sort?.length) {
    return userPageQuery(table, filter, { ...options, sort: options.sort });
  }
  const find = findQuery(table, filter, options);
  const count = countQuery(table, filter, options.countCap);
  const total = totalTerm(options, { sql: `(SELECT n FROM (${count.sql}) c)`, bindings: count.bindings });
  return {
    sql: `WITH found AS MATERIALIZED (${find.sql}), shown AS (SELECT count(*) AS n FROM found)
      SELECT coalesce((SELECT json_agg(doc) FROM found), '[]'::json) AS docs,
             CASE WHEN shown.n BETWEEN 1 AND ? THEN ? + shown.n ELSE ${total.sql} END AS total
        FROM shown`,
    bindings: [...find.bindings, options.limit - 1, options.skip ?? 0, ...total.bindings],
  };
}

/** The total of a page statement: `count`, or the total the caller already knows (kept while the view stands). */
function totalTerm(options: FindOptions, count: Sql): Sql {
  return options.knownTotal !== undefined ? { sql: `?::bigint`, bindings: [options.knownTotal] } : count;
}

/** Whether a filter requires authorized principals (at its top or in its top-level `$and`): what a user may see. */
function restrictedToPrincipals(filter: Filter): boolean {
  return principalConditions(filter).length > 0;
}

/** A sort as the columns k0, k1, … of a row (its keys' expressions on `doc`), and the ORDER BY over them. */
function sortColumns(sort: SortSpec): { keys: string; order: (alias: string) => string } {
  const terms = sort.flatMap(([path, direction]) => (path === "_id" ? ["id"] : sortKeys(path)).map((key) => ({ key, direction })));
  return {
    keys: terms.map(({ key }, i) => `${key} AS k${i}`).join(", "),
    order: (alias) => terms.map(({ direction }, i) => `${alias}k${i} ${direction === 1 ? "ASC NULLS FIRST" : "DESC NULLS LAST"}`).join(", "),
  };
}

/**
 * How many rows of its sort index a user's page may walk before it leaves the page to the one scan: a user who sees
 * 1 in 50 documents, with filters that keep 1 in 4, finds a page of 50 in about 10,000.
 */
const WALK_ROWS = 20_000;

/**
 * A user's page, filtered or in an order other than the plain task list's, and its total.
 *
 * When the user sees at most `cap` documents (or counts are exact), every match must be read for the total anyway,
 * so the page comes from that one scan (`matchedPageQuery`). When the user sees more and the order has a sort index,
 * reading everything the user sees would grow with the collection: the page walks the sort index instead, in
 * order, keeping the rows the user may see and the filters keep until it has the page — stopped after
 * `WALK_ROWS` rows — and the total is the capped count, which stops at cap + 1 matches. A walk that stops
 * without a full page (a rare match, a deep page) leaves the answer to the one scan. Both take about the same
 * number of rows whatever the size of the collection: the walk about page ÷ (share the user sees × share the
 * filters keep), the count about cap ÷ (share the filters keep). One statement; PostgreSQL runs only the branch
 * it takes.
 */
function userPageQuery(table: string, filter: Filter, options: FindOptions & { limit: number; sort: SortSpec }): Sql {
  const cap = options.countCap;
  const visible = visibleTable(table);
  const principals = principalsOf(filter);
  const indexed = (SORT_FIELDS[kindOf(table)] ?? []).includes(options.sort[0]![0]);
  if (!cap || !visible || !principals || !indexed) return matchedPageQuery(table, filter, options);
  const where = whereOf(filter);
  const { keys, order } = sortColumns(options.sort);
  const skip = options.skip ?? 0;
  const beyond = beyondCap(visible, principals, cap);
  const total = totalTerm(options, {
    sql: `CASE WHEN (SELECT walk FROM chosen) THEN (SELECT count(*) FROM (SELECT 1 FROM "${table}" WHERE ${where.sql} LIMIT ?) r)
               ELSE (SELECT count(*) FROM matched) END`,
    bindings: [...where.bindings, cap + 1],
  });
  return {
    sql: `WITH walked AS MATERIALIZED (
             SELECT id, ${keys}
               FROM (SELECT id, doc, deleted, principals FROM "${table}" WHERE NOT deleted${orderByOf(options.sort)} LIMIT ?) w
              WHERE ${where.sql} LIMIT ?),
           matched AS MATERIALIZED (SELECT id, ${keys} FROM "${table}" WHERE ${where.sql}),
           chosen AS (SELECT CASE WHEN ${beyond.sql} THEN (SELECT count(*) FROM walked) = ? ELSE false END AS walk),
           page AS (SELECT * FROM (SELECT * FROM walked WHERE (SELECT walk FROM chosen)
                                   UNION ALL SELECT * FROM matched WHERE NOT (SELECT walk FROM chosen)) m
                     ORDER BY ${order("")} LIMIT ? OFFSET ?)
      SELECT coalesce((SELECT json_agg(t.doc ORDER BY ${order("p.")}) FROM page p JOIN "${table}" t ON t.id = p.id), '[]'::json) AS docs,
             ${total.sql} AS total`,
    bindings: [
      Math.max(WALK_ROWS, skip + options.limit),
      ...where.bindings,
      skip + options.limit,
      ...where.bindings,
      ...beyond.bindings,
      skip + options.limit,
      options.limit,
      skip,
      ...total.bindings,
    ],
  };
}

/**
 * A user's page and its total from one scan: the documents the user may see are read once (the principals' GIN
 * index, then the filters), their ids and sort keys kept, counted, and the page taken from them — where a page and
 * a count used to read the same documents twice. The documents of the page are joined last. Bounded by what the
 * user may see; a collection-wide page keeps its index walk (`findQuery`).
 */
function matchedPageQuery(table: string, filter: Filter, options: FindOptions & { limit: number; sort: SortSpec }): Sql {
  const where = whereOf(filter);
  const { keys, order } = sortColumns(options.sort);
  const total = totalTerm(options, { sql: `(SELECT count(*) FROM matched)`, bindings: [] });
  return {
    sql: `WITH matched AS MATERIALIZED (SELECT id, ${keys} FROM "${table}" WHERE ${where.sql}),
           page AS (SELECT * FROM matched ORDER BY ${order("")} LIMIT ? OFFSET ?)
      SELECT coalesce((SELECT json_agg(t.doc ORDER BY ${order("p.")}) FROM page p JOIN "${table}" t ON t.id = p.id), '[]'::json) AS docs,
             ${total.sql} AS total`,
    bindings: [...where.bindings, options.limit, options.skip ?? 0, ...total.bindings],
  };
}

// ---- the store -------------------------------------------------------------------------------------------------

/** Documents per upsert statement. */
const WRITE_CHUNK = 500;

class PostgresViewCollection<D extends Doc> implements ViewCollection<D> {
  private readonly store: PostgresViewStore;
  private readonly table: string;

  constructor(store: PostgresViewStore, table: string) {
    this.store = store;
    this.table = table;
  }

  async find(filter: Filter, options: FindOptions = {}): Promise<D[]> {
    const { sql, bindings } = findQuery(this.table, filter, options);
    const rows = await this.store.rows<{ doc: D }>(sql, bindings);
    return rows.map((row) => (options.fields ? pick(row.doc, options.fields) : row.doc));
  }

  async count(filter: Filter): Promise<number> {
    const { sql, bindings } = countQuery(this.table, filter);
    const [row] = await this.store.rows<{ n: string | number }>(sql, bindings);
    return Number(row?.n ?? 0);
  }

  /** One round trip: the page and, unless known, its total (see `pageQuery`), in the same way either way. */
  async page(filter: Filter, options: FindOptions): Promise<{ docs: D[]; total: number }> {
    if (!options.limit) {
      const docs = await this.find(filter, options);
      return { docs, total: options.knownTotal ?? (docs.length > 0 ? (options.skip ?? 0) + docs.length : await this.count(filter)) };
    }
    const { sql, bindings } = pageQuery(this.table, filter, { ...options, limit: options.limit });
    const [row] = await this.store.rows<{ docs: D[]; total: string | number }>(sql, bindings);
    const docs = row?.docs ?? [];
    return { docs: options.fields ? docs.map((doc) => pick(doc, options.fields!)) : docs, total: Number(row?.total ?? 0) };
  }

  async byIds(ids: string[]): Promise<D[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.rows<{ doc: D }>(`SELECT doc FROM "${this.table}" WHERE id = ANY(?::text[])`, [ids]);
    return rows.map((row) => row.doc);
  }

  async write(docs: D[]): Promise<void> {
    const sql = this.writeSql();
    for (let i = 0; i < docs.length; i += WRITE_CHUNK) {
      await this.store.rows(sql, [JSON.stringify(docs.slice(i, i + WRITE_CHUNK))]);
    }
    await this.store.written(this.table, docs.length);
  }

  /**
   * One statement per chunk: the multi-row upsert of the documents and, where the collection has a principal
   * table, only its changes — the (principal, id) pairs a document lost or gained (a deleted document has none).
   * Every part sees the table as it was before the statement, so `before` is the old state.
   */
  private writeSql(): string {
    const upsert = `INSERT INTO "${this.table}" AS t (id, doc, deleted, principals)
         SELECT id, doc, deleted, principals FROM incoming
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, deleted = excluded.deleted, principals = excluded.principals`;
    const incoming = `incoming AS (
         SELECT (d ->> '_id') COLLATE "C" AS id, d AS doc, coalesce((d ->> 'deleted')::boolean, false) AS deleted,
                ARRAY(SELECT jsonb_array_elements_text(coalesce(d -> 'authorizedPrincipals', '[]'::jsonb))) AS principals
           FROM jsonb_array_elements(?::jsonb) AS d)`;
    const visible = visibleTable(this.table);
    if (!visible) return `WITH ${incoming} ${upsert}`;
    return `WITH ${incoming},
       before AS (
         SELECT t.id, unnest(t.principals) AS principal, ${visibleKeys(this.table, "t.doc")}
           FROM "${this.table}" t JOIN incoming i ON i.id = t.id WHERE NOT t.deleted),
       after AS (
         SELECT id, unnest(principals) AS principal, ${visibleKeys(this.table, "doc")} FROM incoming WHERE NOT deleted),
       upserted AS (${upsert} RETURNING 1),
       removed AS (
         DELETE FROM "${visible}" v USING (SELECT * FROM before EXCEPT SELECT * FROM after) r
          WHERE v.principal = r.principal AND v.sort_rank = r.sort_rank AND v.sort_number = r.sort_number
            AND v.sort_text = r.sort_text AND v.id = r.id RETURNING 1),
       added AS (
         INSERT INTO "${visible}" (principal, id, sort_rank, sort_number, sort_text)
         SELECT principal, id, sort_rank, sort_number, sort_text FROM (SELECT * FROM after EXCEPT SELECT * FROM before) a
         ON CONFLICT DO NOTHING RETURNING 1)
     SELECT (SELECT count(*) FROM upserted) AS upserted, (SELECT count(*) FROM removed) AS removed, (SELECT count(*) FROM added) AS added`;
  }

  async distinct(path: string, filter: Filter): Promise<unknown[]> {
    const where = whereOf(filter);
    if (path === "_id") {
      const rows = await this.store.rows<{ id: string }>(`SELECT id FROM "${this.table}" WHERE ${where.sql}`, where.bindings);
      return rows.map((row) => row.id);
    }
    const rows = await this.store.rows<{ value: unknown }>(
      `SELECT DISTINCT v AS value FROM "${this.table}", jsonb_path_query(doc, ?::jsonpath) AS v WHERE ${where.sql}`,
      [`${jsonPath(path)}[*]`, ...where.bindings],
    );
    return rows.map((row) => row.value);
  }

  async countBy(path: string, filter: Filter): Promise<{ value: unknown; count: number }[]> {
    const where = whereOf(filter);
    const rows = await this.store.rows<{ value: unknown; n: string | number }>(
      `SELECT doc #> ?::text[] AS value, count(*) AS n FROM "${this.table}" WHERE ${where.sql} GROUP BY 1`,
      [path.split("."), ...where.bindings],
    );
    return rows.map((row) => ({ value: row.value ?? null, count: Number(row.n) }));
  }

  async ensureIndexes(_indexes: IndexSpec[]): Promise<void> {
    // The tables' indexes are designed for the SQL above (tableDdl), not derived from MongoDB's.
    await this.store.ensureTable(this.table);
  }
}

function pick<D extends Doc>(doc: D, fields: string[]): D {
  const picked: Record<string, unknown> = { _id: doc._id };
  for (const field of fields) if (field in doc) picked[field] = doc[field];
  return picked as D;
}

export class PostgresViewStore implements ViewStore {
  readonly kind = "postgres" as const;
  private readonly transaction = new AsyncLocalStorage<Knex.Transaction>();
  private readonly tables = new Set<string>();
  /** Rows written per table since its statistics were last gathered (embedded only). */
  private readonly unanalyzed = new Map<string, number>();

  private readonly database: Database;

  private constructor(database: Database) {
    this.database = database;
  }

  static async open(options: PostgresViewStoreOptions): Promise<PostgresViewStore> {
    const database = await openDatabase({
      url: options.url,
      pgliteDir: options.pgliteDir,
      schema: options.schema ?? "view",
      migrations: viewMigrations,
      migrationsTable: viewMigrationsTable,
      poolMax: options.poolMax ?? 10,
    });
    return new PostgresViewStore(database);
  }

  get embedded(): boolean {
    return this.database.embedded;
  }

  get knex(): Knex {
    return this.database.knex;
  }

  /** The connection of the running `atomically` call, or the pool. */
  db(): Knex {
    return this.transaction.getStore() ?? this.database.knex;
  }

  async rows<R>(sql: string, bindings: Knex.RawBinding[]): Promise<R[]> {
    const result = await this.db().raw(sql, bindings);
    return (result.rows ?? []) as R[];
  }

  collection<D extends Doc>(name: string): ViewCollection<D> {
    return new PostgresViewCollection<D>(this, tableName(name));
  }

  /**
   * PGlite runs no autovacuum, so nothing would ever gather the planner's statistics of the view's tables: the
   * store does it itself after every 5,000 rows written to a table (a server's autovacuum does this there).
   */
  async written(table: string, rows: number): Promise<void> {
    if (!this.database.embedded) return;
    const total = (this.unanalyzed.get(table) ?? 0) + rows;
    if (total < 5000) {
      this.unanalyzed.set(table, total);
      return;
    }
    this.unanalyzed.set(table, 0);
    await this.db().raw(`ANALYZE "${table}"`);
    // Its visible table too: the plain task list's page and total are planned on it.
    const visible = visibleTable(table);
    if (visible) await this.db().raw(`ANALYZE "${visible}"`);
  }

  async ensureTable(table: string): Promise<void> {
    if (this.tables.has(table)) return;
    // Only what is missing: "CREATE … IF NOT EXISTS" of an existing index still locks and looks up the table, and
    // on the embedded database the view's dozen of them were a noticeable part of every restart.
    const statements = tableDdl(table).map((sql) => ({ sql, relation: /IF NOT EXISTS "([^"]+)"/.exec(sql)![1]! }));
    const existing = new Set(
      (
        await this.rows<{ relname: string }>(
          `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ANY(?::text[])`,
          [this.database.schema, statements.map((statement) => statement.relation)],
        )
      ).map((row) => row.relname),
    );
    for (const statement of statements) if (!existing.has(statement.relation)) await this.db().raw(statement.sql);
    const visible = visibleTable(table);
    if (visible && !existing.has(visible)) {
      // A table of an earlier version, written before the visible table existed: fill it once from the documents
      // (and drop the principal → id table that version kept for its counts).
      await this.db().raw(
        `INSERT INTO "${visible}" (principal, id, sort_rank, sort_number, sort_text)
         SELECT DISTINCT unnest(principals), id, ${visibleKeys(table, "doc")} FROM "${table}" WHERE NOT deleted ON CONFLICT DO NOTHING`,
      );
      await this.db().raw(`DROP TABLE IF EXISTS "${table}_by_principal"`);
    }
    this.tables.add(table);
  }

  async getMeta(id: string): Promise<Doc | null> {
    const [row] = await this.rows<{ doc: Doc }>(`SELECT doc FROM view_meta WHERE id = ?`, [id]);
    return row?.doc ?? null;
  }

  async setMeta(doc: Doc): Promise<void> {
    await this.rows(`INSERT INTO view_meta (id, doc) VALUES (?, ?::jsonb) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, [doc._id, JSON.stringify(doc)]);
  }

  async collectionNames(): Promise<string[]> {
    const rows = await this.rows<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? AND table_name ~ '_g[0-9]+$'`,
      [this.database.schema],
    );
    return rows.map((row) => row.name);
  }

  async drop(names: string[]): Promise<void> {
    for (const name of names) {
      const table = tableName(name);
      await this.db().raw(`DROP TABLE IF EXISTS "${table}"`);
      const visible = visibleTable(table);
      if (visible) await this.db().raw(`DROP TABLE IF EXISTS "${visible}"`);
      await this.db().raw(`DROP TABLE IF EXISTS "${table}_by_principal"`);
      this.tables.delete(table);
    }
  }

  /** Runs `work` in one transaction: every read and write of the store inside it, and nothing else. */
  atomically<T>(work: () => Promise<T>): Promise<T> {
    if (this.transaction.getStore()) return work();
    return this.database.knex.transaction((trx) => this.transaction.run(trx, work));
  }

  /** The query plan of a filter and sort on a collection (benchmarks and docs). */
  async explain(collection: string, filter: Filter, options: FindOptions = {}): Promise<string> {
    const { sql, bindings } = findQuery(tableName(collection), filter, options);
    const result = await this.db().raw(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, bindings);
    return (result.rows as { "QUERY PLAN": string }[]).map((row) => row["QUERY PLAN"]).join("\n");
  }

  close(): Promise<void> {
    return this.database.close();
  }
}
