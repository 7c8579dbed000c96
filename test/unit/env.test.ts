// lib/env.ts is the one reader of the environment: every variable is checked when the node starts, and a wrong
// value is an error that names the variable (server.ts prints it and exits 1).
import { describe, expect, it } from "vitest";
import { readEnvironment } from "../../lib/env.ts";
import { approvalSettingsOf } from "../../apps/approval/settings.ts";

describe("readEnvironment", () => {
  it("gives the documented defaults", () => {
    const env = readEnvironment({});
    expect(env.dataEntryDeletionStrategy).toBe("lax");
    expect(env.eventMaxBytes).toBe(900 * 1024);
    expect(env.api).toEqual({ waitTimeoutMs: 5000, readyMaxLag: 1000, sseRetentionMs: 600_000, sseRetentionEvents: 10_000, dashboardIntervalMs: 2000, answerCacheBytes: 32 * 1024 * 1024 });
    expect(env.host).toBe("0.0.0.0");
    expect(env.metricsHost).toBe("127.0.0.1");
    expect(env.publicUrl).toBe("http://localhost:8081");
    expect(env.usersFile).toBeNull();
  });

  it("reads the values given", () => {
    const env = readEnvironment({ DATA_ENTRY_DELETION_STRATEGY: "Strict", API_WAIT_TIMEOUT: "250", PORT: "9000", HOST: "127.0.0.1", USERS_FILE: "users.json" });
    expect(env.dataEntryDeletionStrategy).toBe("strict");
    expect(env.api.waitTimeoutMs).toBe(250);
    expect(env.publicUrl).toBe("http://localhost:9000");
    expect(env.host).toBe("127.0.0.1");
    expect(env.usersFile).toBe("users.json");
  });

  it("refuses a wrong value, naming the variable", () => {
    expect(() => readEnvironment({ DATA_ENTRY_DELETION_STRATEGY: "sometimes" })).toThrow(/DATA_ENTRY_DELETION_STRATEGY must be one of lax, strict/);
    expect(() => readEnvironment({ API_WAIT_TIMEOUT: "soon" })).toThrow(/API_WAIT_TIMEOUT must be a non-negative integer/);
    expect(() => readEnvironment({ EVENT_MAX_BYTES: "-1" })).toThrow(/EVENT_MAX_BYTES/);
    expect(() => readEnvironment({ SSE_RETENTION_MS: "1.5" })).toThrow(/SSE_RETENTION_MS/);
  });

  it("lets the example application read its own variables (apps/approval/settings.ts), refusing a wrong one by name", () => {
    const approval = (variables: NodeJS.ProcessEnv) => {
      const { port, tasklistUrl } = approvalSettingsOf(readEnvironment(variables), variables);
      return { port, tasklistUrl };
    };
    expect(approval({})).toEqual({ port: 8080, tasklistUrl: "http://localhost:8081/" });
    expect(approval({ APP_PORT: "9090", PORT: "9000" })).toEqual({ port: 9090, tasklistUrl: "http://localhost:9000/" });
    expect(approval({ TASKLIST_URL: " https://tasks.example/ " }).tasklistUrl).toBe("https://tasks.example/");
    expect(() => approval({ TASKLIST_URL: "tasks.example" })).toThrow(/TASKLIST_URL must be an http\(s\) URL/);
    expect(() => approval({ TASKLIST_URL: "ftp://tasks.example/" })).toThrow(/TASKLIST_URL/);
    expect(() => approval({ APP_PORT: "eighty" })).toThrow(/APP_PORT must be a non-negative integer/);
    // The platform's configuration does not know them.
    expect(readEnvironment({ APP_PORT: "eighty" })).not.toHaveProperty("approval");
  });

  it("reads the engine connector's variables, null where not set", () => {
    expect(readEnvironment({}).engine).toEqual({
      applicationName: null,
      url: null,
      username: null,
      password: null,
      pollIntervalMs: null,
      overlapMs: null,
      reconcileIntervalMs: null,
      processKeys: null,
      directStartKeys: null,
      enrichment: null,
    });
    const engine = readEnvironment({
      APPLICATION_NAME: " orders ",
      ENGINE_URL: "http://engine/engine-rest",
      ENGINE_USERNAME: "demo",
      ENGINE_PASSWORD: " secret ",
      ENGINE_POLL_INTERVAL: "250",
      ENGINE_PROCESS_KEYS: "a,b",
      ENGINE_ENRICHMENT: '{"assignment":{"assigneeVariable":"owner"}}',
    }).engine;
    expect(engine).toMatchObject({ applicationName: "orders", url: "http://engine/engine-rest", username: "demo", password: " secret ", pollIntervalMs: 250, processKeys: ["a", "b"] });
    expect(engine.enrichment).toEqual({ assignment: { assigneeVariable: "owner" } });
    // A password counts only with a username.
    expect(readEnvironment({ ENGINE_PASSWORD: "secret" }).engine.password).toBeNull();
    // Polls at most every 10 ms.
    expect(readEnvironment({ ENGINE_POLL_INTERVAL: "0" }).engine.pollIntervalMs).toBe(10);
  });

  it("refuses a wrong engine connector value, naming the variable", () => {
    expect(() => readEnvironment({ ENGINE_POLL_INTERVAL: "often" })).toThrow(/ENGINE_POLL_INTERVAL must be a non-negative integer/);
    expect(() => readEnvironment({ ENGINE_OVERLAP: "-5" })).toThrow(/ENGINE_OVERLAP/);
    expect(() => readEnvironment({ ENGINE_RECONCILE_INTERVAL: "1.5" })).toThrow(/ENGINE_RECONCILE_INTERVAL/);
    expect(() => readEnvironment({ ENGINE_ENRICHMENT: "{nope" })).toThrow(/ENGINE_ENRICHMENT must be JSON/);
    expect(() => readEnvironment({ ENGINE_ENRICHMENT: "[1]" })).toThrow(/ENGINE_ENRICHMENT must be a JSON object/);
  });
});
