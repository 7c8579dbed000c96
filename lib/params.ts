// fastest-validator building blocks for the command and query actions. The schemas double as the source of the
// OpenAPI document (services/api.service.ts), so a field is described here once.
import { isCalendarDateTime } from "../domain/calendar.ts";

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** An ISO-8601 date or date-time; normalized to UTC (`2026-11-23T10:00:00.000Z`). Null clears. */
export function isoDate(options: { optional?: boolean } = {}) {
  return {
    type: "any",
    optional: options.optional ?? true,
    nullable: options.optional ?? true,
    format: "date-time",
    custom(value: unknown, errors: { type: string; actual: unknown }[]) {
      if (value === null || value === undefined) return value;
      if (typeof value !== "string" || !ISO_DATE_TIME.test(value) || !isCalendarDateTime(value)) {
        errors.push({ type: "isoDate", actual: value });
        return value;
      }
      return new Date(value).toISOString();
    },
    messages: { isoDate: "The '{field}' field must be an ISO-8601 date-time, e.g. 2026-11-23T10:00:00Z." },
  };
}

export const id = { type: "string", min: 1, max: 300, trim: true };
export const optionalText = { type: "string", max: 10_000, optional: true, nullable: true };
export const name = { type: "string", min: 1, max: 300 };
export const names = { type: "array", items: { type: "string", min: 1, max: 300 }, max: 10_000 };
export const optionalNames = { ...names, optional: true, nullable: true };
export const jsonObject = { type: "object", strict: false };
export const optionalJsonObject = { type: "object", strict: false, optional: true, nullable: true };
/** entryType → entryId */
export const correlations = { type: "record", key: { type: "string", min: 1 }, value: { type: "string" }, optional: true, nullable: true };

export const sourceReference = {
  type: "object",
  strict: "remove",
  props: {
    type: { type: "enum", values: ["process", "case", "generic"], default: "process" },
    instanceId: { type: "string", max: 300 },
    executionId: { type: "string", max: 300 },
    definitionId: { type: "string", max: 300 },
    definitionKey: { type: "string", max: 300 },
    name: { type: "string", max: 1000 },
    applicationName: name,
    tenantId: { type: "string", max: 300, optional: true, nullable: true },
  },
};

export const user = {
  type: "object",
  strict: "remove",
  props: { username: name, groups: { ...names, default: [] } },
};

/** Drops the transport-only fields of an action's params, leaving the command's own. */
export function commandOf<T extends string, P extends Record<string, unknown>>(type: T, params: P): { type: T } & Omit<P, "commandId"> {
  const { commandId: _commandId, ...rest } = params;
  return { type, ...rest } as { type: T } & Omit<P, "commandId">;
}
