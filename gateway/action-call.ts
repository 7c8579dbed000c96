// What the gateway's modules need of Moleculer: a way to call an action (a context's `call`, bound).
import type { CallingOptions } from "moleculer";

export type ActionCall = (action: string, params: object, opts?: CallingOptions) => Promise<unknown>;
