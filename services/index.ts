// The catalogue of services a node can run. SERVICES (comma-separated) picks from it by name; unset runs the
// embedded platform: every service below in one process. A path to a `*.service.ts` file is accepted too,
// as moleculer-runner does, so tests and process applications can add their own.
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { NodeLifecycle } from "../lib/lifecycle.ts";

type Loader = () => Promise<{ default: ServiceSchema<object> }>;

export const catalogue: Record<string, Loader> = {
  eventstore: () => import("./eventstore.service.ts"),
  task: () => import("./task.service.ts"),
  dataEntry: () => import("./data-entry.service.ts"),
  processDefinition: () => import("./process-definition.service.ts"),
  processInstance: () => import("./process-instance.service.ts"),
  processVariable: () => import("./process-variable.service.ts"),
  view: () => import("./view.service.ts"),
  api: () => import("./api.service.ts"),
  engineConnector: () => import("./engine-connector.service.ts"),
  // The example process application "Request Approval" and its engine connector (Operaton when ENGINE_URL is
  // set, else the embedded engine the application registers in this process). The only place the platform names
  // an application: these loaders import its files when a node runs it, as SERVICES naming their paths
  // (apps/approval/approval.service.ts, apps/approval/approval-connector.service.ts) would; nothing of the platform
  // imports apps/ otherwise (eslint.config.mjs).
  approval: () => import("../apps/approval/approval.service.ts"),
  approvalConnector: () => import("../apps/approval/approval-connector.service.ts"),
};

/**
 * Services of `npm start` without SERVICES, in start order: the platform, and the example application on the
 * embedded engine with its connector. The generic `engineConnector` serves other applications (APPLICATION_NAME).
 */
export const embeddedServices: string[] = Object.keys(catalogue).filter((name) => name !== "engineConnector");

export async function loadServices(broker: ServiceBroker, names: string[] | null, lifecycle?: NodeLifecycle): Promise<string[]> {
  const selected = names ?? embeddedServices;
  for (const name of selected) {
    if (!catalogue[name] && !name.endsWith(".ts") && !name.endsWith(".js")) {
      throw new Error(`Unknown service "${name}" in SERVICES; known: ${Object.keys(catalogue).join(", ")}`);
    }
  }
  // Imported together (the imports are most of a node's start-up), created in the order given.
  const schemas = await Promise.all(
    selected.map(async (name) => {
      const loader = catalogue[name];
      if (loader) return (await loader()).default;
      return (await import(pathToFileURL(resolve(name)).href)).default as ServiceSchema<object>;
    }),
  );
  for (const schema of schemas) {
    if (lifecycle?.stopping) break;
    const service = broker.createService(schema);
    lifecycle?.guard(service);
  }
  return selected;
}
