// The pure domain layer: deciders of the five aggregates, their commands, events and value types.
export * from "./decider.ts";
export * from "./types.ts";
export * from "./task.ts";
export * from "./data-entry.ts";
export * from "./process-definition.ts";
export * from "./process-instance.ts";
export * from "./process-variables.ts";
export * from "./events.ts";
