// Typed Moleculer schemas. A service or mixin is written against its own `this` (settings, methods, local
// state: `ServiceSchema<Settings, Methods, Locals>`), so that the compiler checks every handler; it is handed out
// in the shape Moleculer's signatures take — `mixins: Partial<ServiceSchema>[]`, createService's schema — whose
// `this` is the untyped default. A typed `this` is not assignable to that one (a handler's `this` is an input),
// though Moleculer builds `this` from the very schema, mixins merged: hence the one widening here.
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";

/** A service schema, checked against its own `this`; `S` stays visible to callers (settings overrides). */
export function defineService<S = ServiceSettingSchema, M = Record<never, never>, V = Record<never, never>>(schema: ServiceSchema<S, M, V>): ServiceSchema<S> {
  return schema as unknown as ServiceSchema<S>;
}

/** A mixin, checked against its own `this` (its methods and state, and what it needs from the service). */
export function defineMixin<S = ServiceSettingSchema, M = Record<never, never>, V = Record<never, never>>(schema: Partial<ServiceSchema<S, M, V>>): Partial<ServiceSchema> {
  return schema as unknown as Partial<ServiceSchema>;
}
