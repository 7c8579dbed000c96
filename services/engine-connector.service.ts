// Service `engineConnector`: one process application's bridge between its BPMN engine and the task pool — the
// Moleculer shell of engine/connector/. The connector (engine/connector/connector.ts) polls the engine's change
// feeds and sends the pool the smallest set of commands (engine → pool), and performs the application's
// interaction events in the engine (pool → engine); this file gives it the broker's `call` and logger, feeds it
// those events through a tracking processor (at least once; the connector performs each once), and offers its
// `status` and `sync` actions.
//
// Build it with `createEngineConnector({ settings, adapter })`; the default export reads its settings from the
// environment (lib/env.ts, `engine` section; engine/connector/settings.ts).
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { TrackingProcessorMixin, type HandleContext, type TrackingProcessorMethods, type TrackingProcessorOptions } from "../mixins/tracking-processor.mixin.ts";
import { EngineConnector, type EngineConnectorStatus } from "../engine/connector/connector.ts";
import { actionCallOf } from "../lib/actions.ts";
import type { EngineAdapter } from "../engine/connector/engine-adapter.ts";
import { INTERACTION_EVENT_TYPES } from "../engine/connector/interactions.ts";
import { engineOf } from "../engine/connector/process-engine.ts";
import { connectorSettingsOf, resolveSettings, type EngineConnectorSettings } from "../engine/connector/settings.ts";
import { OperatonAdapter } from "../engine/operaton/operaton-adapter.ts";
import { registeredEngineAdapter } from "../engine/embedded/registered-adapter.ts";
import type { RecordedEvent } from "../stores/event-store.ts";
import { readEnvironment } from "../lib/env.ts";
import { defineService } from "../lib/schema.ts";

export type { EngineConnectorSettings } from "../engine/connector/settings.ts";
export type { ConnectorError, EngineConnectorStatus } from "../engine/connector/connector.ts";

/**
 * The connector's settings as the service carries them ($node.services, the password left out). Optional to
 * Moleculer (a mixin or createService may override them); the connector itself takes the resolved ones.
 */
export type EngineConnectorServiceSettings = Partial<EngineConnectorSettings> & ServiceSettingSchema;

/** The service's own methods (the tracking processor calls them), and the mixin's one it calls. */
type EngineConnectorMethods = Pick<TrackingProcessorMethods, "handleEvents" | "loadProcessorToken" | "stopProcessorLoop">;

/** What the service instance holds. */
interface EngineConnectorLocals {
  connector: EngineConnector;
}

export interface EngineConnectorOptions {
  /** Service name (default `engineConnector`). */
  name?: string;
  /** Overrides of the settings read from the environment. */
  settings?: Partial<EngineConnectorSettings>;
  /** The engine, when not Operaton / Camunda 7 at `engineUrl` (e.g. the embedded engine). */
  adapter?: EngineAdapter | ((settings: EngineConnectorSettings) => EngineAdapter);
  /** Tracking processor options for the interaction events (lease, retries). */
  processor?: Partial<Omit<TrackingProcessorOptions, "processor" | "eventTypes">>;
  /** Read settings from this environment instead of the process's. */
  env?: NodeJS.ProcessEnv;
}

/** The connector's settings from the environment (lib/env.ts reads and checks it); only what is set. */
export function engineConnectorSettingsFromEnv(env?: NodeJS.ProcessEnv): Partial<EngineConnectorSettings> {
  return connectorSettingsOf(readEnvironment(env));
}

/** The engine adapter: the one given, else Operaton at `engineUrl`, else the engine registered in this process. */
function adapterFor(settings: EngineConnectorSettings, given: EngineConnectorOptions["adapter"]): EngineAdapter {
  if (typeof given === "function") return given(settings);
  if (given) return given;
  // No engine URL: the in-process engine its application registered (embedded platform); `started` waits for it.
  if (!settings.engineUrl) return registeredEngineAdapter(settings.applicationName);
  return new OperatonAdapter({ baseUrl: settings.engineUrl, username: settings.engineUsername, password: settings.enginePassword, timeoutMs: settings.requestTimeoutMs });
}

/** The `engineConnector` service for one application. */
export function createEngineConnector(options: EngineConnectorOptions = {}): ServiceSchema<EngineConnectorServiceSettings> {
  const settings = resolveSettings(readEnvironment(options.env), options.settings);
  return defineService<EngineConnectorServiceSettings, EngineConnectorMethods, EngineConnectorLocals>({
    name: options.name ?? "engineConnector",
    settings: {
      // Shown by $node.services; the password stays out.
      $secureSettings: ["enginePassword"],
      ...settings,
    },
    mixins: [
      TrackingProcessorMixin({
        onError: "park",
        attempts: 5,
        retryDelayMs: 500,
        ...options.processor,
        processor: `engine-connector:${settings.applicationName || "unconfigured"}`,
        eventTypes: INTERACTION_EVENT_TYPES,
      }),
    ],

    actions: {
      /** The connector's watermarks, last poll, counts and recent errors. */
      status: {
        async handler(): Promise<EngineConnectorStatus> {
          await this.connector.ready;
          return this.connector.statusNow();
        },
      },
      /** Polls the engine now (and reconciles everything when asked); answers with the status afterwards. */
      sync: {
        params: { reconcile: { type: "boolean", optional: true, default: false } },
        async handler(ctx: Context<{ reconcile: boolean }>): Promise<EngineConnectorStatus> {
          await this.connector.ready;
          return this.connector.sync(ctx.params.reconcile);
        },
      },
    },

    methods: {
      async handleEvents(events: RecordedEvent[], context: HandleContext): Promise<void> {
        await this.connector.handleInteractionEvents(events, context.replaying);
      },
      async loadProcessorToken(token: string): Promise<string> {
        return this.connector.interactionStartToken(token);
      },
    },

    created() {
      if (!settings.applicationName) throw new Error("engineConnector: APPLICATION_NAME (settings.applicationName) is required");
      this.connector = new EngineConnector({ call: actionCallOf(this.broker), logger: this.logger, nodeId: this.broker.nodeID, settings, adapter: adapterFor(settings, options.adapter) });
    },

    async started() {
      if (!options.adapter && !settings.engineUrl) await engineOf(settings.applicationName);
      await this.connector.start();
    },

    async stopped() {
      // The interaction processor first (it may wait for the connector), then the connector.
      await this.stopProcessorLoop();
      await this.connector.stop();
    },
  });
}

export default createEngineConnector();
