// One table per gateway: each row is a route of the gateway (its moleculer-web alias) and, when it carries a
// description, an operation of the gateway's OpenAPI document — so a route cannot be served without being
// documented the way it is served, or documented without being served. The operation's parameters come from the
// fastest-validator params of the action behind it (gateway/openapi.ts), where they also validate.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { OpenApiRoute } from "./openapi.ts";

/** A route answered by the gateway itself (streams, files) rather than by an action. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- moleculer-web calls it with the service as `this` and its own request type
export type AliasHandler = (this: any, req: IncomingMessage & any, res: ServerResponse) => void;

/** `A`: the names the table's actions may have (a gateway's own: lib/actions.ts). */
export interface TableRoute<A extends string = string> {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The path as served and documented, with `:param` segments. */
  path: string;
  /** The action behind the route; its params document the operation. */
  action?: A;
  /** Or the gateway's own handler. */
  handler?: AliasHandler;
  /** The operation in the OpenAPI document; none: served, not documented (pages, files, operator streams). */
  doc?: Omit<OpenApiRoute, "method" | "path" | "params">;
}

/**
 * moleculer-web aliases of a table; `paths` gives every path a route is served under (by default its own), for a
 * gateway that serves the same routes under a second base path.
 */
export function aliasesOf(routes: TableRoute[], paths: (path: string) => string[] = (path) => [path]): Record<string, string | AliasHandler> {
  const aliases: Record<string, string | AliasHandler> = {};
  for (const route of routes) {
    const target = route.action ?? route.handler;
    if (!target) throw new Error(`${route.method} ${route.path}: a route needs an action or a handler`);
    for (const path of paths(route.path)) aliases[`${route.method} ${path}`] = target;
  }
  return aliases;
}

/** The documented routes of tables, as OpenAPI operations, with the params of the actions behind them. */
export function openApiRoutesOf(routes: TableRoute[], paramsOf: (action: string) => OpenApiRoute["params"]): OpenApiRoute[] {
  return routes.flatMap((route) => (route.doc ? [{ ...route.doc, method: route.method, path: route.path, params: route.action ? paramsOf(route.action) : undefined }] : []));
}
