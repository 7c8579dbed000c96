// Calendar validity of ISO-8601 date-times. `Date.parse` rolls impossible dates over (2027-02-30 becomes
// 2027-03-02) instead of refusing them, so a date is checked field by field against the calendar before use.

const PARTS = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):?(\d{2}))?)?$/;

/** True when `raw` is an ISO-8601 date or date-time whose every field exists (month 1–12, day of that month, …). */
export function isCalendarDateTime(raw: string): boolean {
  const m = PARTS.exec(raw);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  // Day 0 of the next month is the last day of this one.
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return false;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return false;
  if (m[8] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return false;
  return !Number.isNaN(Date.parse(raw));
}

/** Keys that would reach an object's prototype when used as a property path: never a field name. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
