// The engine connector's settings (engine/connector/settings.ts): defaults, then what the environment sets (read
// and checked by lib/env.ts), then the creator's overrides.
import { describe, expect, it } from "vitest";
import { resolve } from "node:path";
import { connectorSettingsOf, DEFAULT_SETTINGS, resolveSettings } from "../../../../engine/connector/settings.ts";
import { readEnvironment } from "../../../../lib/env.ts";
import { embeddedDatabaseDirectory } from "../../../../stores/database.ts";

describe("connector settings", () => {
  it("take only what the environment sets, besides the state location", () => {
    const settings = connectorSettingsOf(readEnvironment({ DATA_DIR: "/tmp/tp-data" }));
    expect(settings).toEqual({ databaseUrl: null, pgliteDir: embeddedDatabaseDirectory(resolve("/tmp/tp-data")) });
  });

  it("take the engine variables", () => {
    const settings = connectorSettingsOf(
      readEnvironment({
        APPLICATION_NAME: "orders",
        ENGINE_URL: "http://engine:8080/engine-rest",
        ENGINE_USERNAME: "demo",
        ENGINE_POLL_INTERVAL: "3",
        ENGINE_OVERLAP: "5000",
        ENGINE_RECONCILE_INTERVAL: "0",
        ENGINE_PROCESS_KEYS: "a, b,,c",
        ENGINE_DIRECT_START_KEYS: "b",
        ENGINE_ENRICHMENT: '{"variableFilters":[]}',
        DATABASE_URL: "postgres://db/taskpool",
      }),
    );
    expect(settings).toMatchObject({
      applicationName: "orders",
      engineUrl: "http://engine:8080/engine-rest",
      engineUsername: "demo",
      enginePassword: "",
      pollIntervalMs: 10,
      overlapMs: 5000,
      reconcileIntervalMs: 0,
      processDefinitionKeys: ["a", "b", "c"],
      directStartKeys: ["b"],
      enrichment: { variableFilters: [] },
      databaseUrl: "postgres://db/taskpool",
    });
  });

  it("put overrides over the environment over the defaults", () => {
    const environment = readEnvironment({ APPLICATION_NAME: "orders", ENGINE_OVERLAP: "5000", DATA_DIR: "/tmp/tp-data" });
    const settings = resolveSettings(environment, { overlapMs: 1, autoPoll: false });
    expect(settings.applicationName).toBe("orders");
    expect(settings.overlapMs).toBe(1);
    expect(settings.autoPoll).toBe(false);
    expect(settings.pageSize).toBe(DEFAULT_SETTINGS.pageSize);
    expect(settings.engineUrl).toBeNull();
    expect(resolveSettings(readEnvironment({})).pgliteDir).toBe(embeddedDatabaseDirectory(resolve("./data")));
    expect(resolveSettings(environment, { pgliteDir: "memory" }).pgliteDir).toBe("memory");
  });

  it("keep an application's state under DATA_DIR when the overrides name it and blank its location", () => {
    const environment = readEnvironment({ DATA_DIR: "/tmp/tp-data" });
    const settings = resolveSettings(environment, { applicationName: "orders", pgliteDir: undefined });
    expect(settings.pgliteDir).toBe(embeddedDatabaseDirectory(resolve("/tmp/tp-data")));
  });
});
