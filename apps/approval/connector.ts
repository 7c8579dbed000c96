// The engine connector of the example application "Request Approval": the platform's engine connector
// (services/engine-connector.service.ts) with the application's name, process and enrichment as defaults.
import type { ServiceSchema } from "moleculer";
import { createEngineConnector, engineConnectorSettingsFromEnv, type EngineConnectorOptions, type EngineConnectorServiceSettings } from "../../services/engine-connector.service.ts";
import { APPLICATION_NAME, PROCESS_KEY, approvalEnrichment } from "./process.ts";

/** As the generic connector's; the application's name, process and enrichment are the defaults. */
export type ApprovalConnectorOptions = EngineConnectorOptions;

/**
 * The engine connector for Request Approval: its application name, its process only (unless
 * ENGINE_PROCESS_KEYS says otherwise), its enrichment (unless ENGINE_ENRICHMENT says otherwise); on Operaton when
 * ENGINE_URL is set, else on the engine the `approval` service registers in this process.
 */
export function createApprovalConnector(options: ApprovalConnectorOptions = {}): ServiceSchema<EngineConnectorServiceSettings> {
  const env = options.env;
  const fromEnv = engineConnectorSettingsFromEnv(env);
  const engineUrl = options.settings?.engineUrl !== undefined ? options.settings.engineUrl : (fromEnv.engineUrl ?? null);
  return createEngineConnector({
    ...options,
    env,
    settings: {
      processDefinitionKeys: fromEnv.processDefinitionKeys ?? [PROCESS_KEY],
      enrichment: fromEnv.enrichment ?? approvalEnrichment,
      ...options.settings,
      applicationName: options.settings?.applicationName ?? APPLICATION_NAME,
      engineUrl,
    },
    // Without an engine URL the connector takes the engine the `approval` service registers in this process.
    adapter: options.adapter,
  });
}
