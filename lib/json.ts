// What may travel as event data: plain JSON. A value that JSON would silently change (undefined, NaN, a Date,
// a class instance, a function) is refused with the path where it sits, instead of being stored mangled.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Returns the path of the first value that is not plain JSON, or null when all of it is. */
export function findNonJson(value: unknown, path = "$"): string | null {
  if (value === null) return null;
  switch (typeof value) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : path;
    case "object": {
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const found = findNonJson(value[i], `${path}[${i}]`);
          if (found) return found;
        }
        return null;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return path;
      for (const [key, item] of Object.entries(value)) {
        const found = findNonJson(item, `${path}.${key}`);
        if (found) return found;
      }
      return null;
    }
    default:
      return path;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
