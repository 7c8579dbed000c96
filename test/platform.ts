// The embedded platform's services for one in-process broker, as `npm start` runs them on one node: the event store
// and the view on in-memory PGlite, the REST API on a free loopback port. Tests add what they need next to it.
import type { ServiceBroker, ServiceSchema } from "moleculer";
import EventStoreService from "../services/eventstore.service.ts";
import TaskService from "../services/task.service.ts";
import DataEntryService from "../services/data-entry.service.ts";
import ProcessDefinitionService from "../services/process-definition.service.ts";
import ProcessInstanceService from "../services/process-instance.service.ts";
import ProcessVariableService from "../services/process-variable.service.ts";
import ViewService from "../services/view.service.ts";
import ApiService from "../services/api.service.ts";

/** The event store on in-memory PGlite and the command services: the write side, for tests to add views to. */
export function writeSide(): ServiceSchema<any>[] {
  return [{ ...EventStoreService, settings: { pgliteDir: "memory" } }, TaskService, DataEntryService, ProcessDefinitionService, ProcessInstanceService, ProcessVariableService];
}

/** `securityEnv`: the gateway's authentication settings (gateway/gateway-security.ts); without it, the process's env. */
export function embeddedPlatform(securityEnv?: Record<string, string>): ServiceSchema<any>[] {
  return [
    ...writeSide(),
    { ...ViewService, settings: { mongoUrl: null, pgliteDir: "memory" } },
    { ...ApiService, settings: { ...ApiService.settings, port: 0, ip: "127.0.0.1", ...(securityEnv ? { securityEnv } : {}) } },
  ];
}

/** The address the broker's REST API listens on. */
export function gatewayBase(broker: ServiceBroker): string {
  const { server } = broker.getLocalService("api") as unknown as { server: { address(): { port: number } } };
  return `http://127.0.0.1:${server.address().port}`;
}
