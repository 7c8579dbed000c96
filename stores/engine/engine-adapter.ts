// Forwarding module: engine-adapter.ts moved to engine/connector/; the embedded engine (stores/engine/embedded*) still imports it here
// until it moves to engine/embedded/ — then this file goes.
export * from "../../engine/connector/engine-adapter.ts";
