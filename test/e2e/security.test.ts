// Issue 13: the front doors hold. The embedded platform and the example application (embedded engine) in this
// process, configured as in production (a JWT key, header authentication off) and as a demo (header only); every
// numbered defect of the issue is reproduced over HTTP and must now be refused with a 4xx before any work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServiceBroker } from "moleculer";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import ApiService from "../../services/api.service.ts";
import { createApprovalConnector, createApprovalService } from "../../apps/approval/approval.service.ts";
import { APPLICATION_NAME } from "../../apps/approval/process.ts";
import { TaskpoolPrometheusReporter } from "../../lib/metrics.ts";
import { call, startBroker, waitFor } from "../helpers.ts";
import { embeddedPlatform } from "../platform.ts";

const SECRET = "the HS256 secret of the security test, long enough";
const ORIGIN = "https://tasks.example.org";
const embeddedAvailable = existsSync(fileURLToPath(new URL("../../engine/embedded/engine.ts", import.meta.url)));

const productionEnv = {
  JWT_SECRET: SECRET,
  JWT_MAX_LIFETIME: "600",
  OPERATOR_GROUP: "operators",
  CORS_ORIGINS: ORIGIN,
  SSE_MAX_STREAMS_PER_USER: "2",
  SSE_MAX_STREAMS: "3",
  RATE_LIMIT: "100000",
};

async function token(username: string, options: { groups?: string[]; expiresIn?: string | null; issuedAt?: number } = {}): Promise<string> {
  const jwt = new SignJWT({ preferred_username: username, ...(options.groups ? { groups: options.groups } : {}) }).setProtectedHeader({ alg: "HS256" });
  if (options.issuedAt !== undefined) jwt.setIssuedAt(options.issuedAt);
  else jwt.setIssuedAt();
  if (options.expiresIn !== null) jwt.setExpirationTime(options.expiresIn ?? "5m");
  return jwt.sign(new TextEncoder().encode(SECRET));
}

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

function sourceReference() {
  return { type: "process", instanceId: "pi-sec", executionId: "ex", definitionId: "def:1", definitionKey: "def", name: "Security", applicationName: "security-app" };
}

/** Reads an event stream until it ends; resolves with what arrived and when it ended. */
async function readStream(url: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; text: string; endedAfterMs: number | null }> {
  const started = Date.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const response = await fetch(url, { headers, signal: controller.signal });
  let text = "";
  let endedAfterMs: number | null = null;
  if (response.status === 200) {
    const reader = response.body!.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          endedAfterMs = Date.now() - started;
          break;
        }
        text += new TextDecoder().decode(value);
      }
    } catch {
      // aborted: still open when the time was up
    }
  } else {
    text = await response.text();
  }
  clearTimeout(timer);
  return { status: response.status, text, endedAfterMs };
}


describe("issue 13 in production mode (JWT key configured, header authentication off by default)", () => {
  let broker: ServiceBroker;
  let base: string;
  let app: string;
  const streamOf = async (id: string) => ((await call(broker, "eventstore.readStream", { streamId: `task-${id}` })) as { events: { type: string }[] }).events.map((e) => e.type);

  beforeAll(async () => {
    const services = embeddedPlatform(productionEnv);
    if (embeddedAvailable) {
      services.push(
        createApprovalService({
          env: productionEnv,
          settings: { port: 0, host: "127.0.0.1", engineUrl: null, databaseUrl: null, pgliteDir: "memory", embeddedEngine: { applicationName: APPLICATION_NAME, databaseUrl: null, pgliteDir: "memory" } },
        }),
        createApprovalConnector({ env: {}, settings: { engineUrl: null, pgliteDir: "memory", pollIntervalMs: 300, reconcileIntervalMs: 0 }, processor: { pollIntervalMs: 100 } }),
      );
    }
    broker = await startBroker(services, { metrics: { enabled: true, collectProcessMetrics: true, reporter: [new TaskpoolPrometheusReporter({ port: 0 }) as never] } } as never);
    base = `http://127.0.0.1:${(broker.getLocalService("api") as any).server.address().port}`;
    if (embeddedAvailable) app = `http://127.0.0.1:${((await call(broker, "approval.status")) as { port: number }).port}`;
    await call(broker, "task.create", {
      id: "sec-t1",
      sourceReference: sourceReference(),
      taskDefinitionKey: "approve",
      name: "Approve",
      candidateUsers: ["gonzo", "piggy", "kermit"],
      candidateGroups: ["muppetshow"],
      assignee: "gonzo",
    });
    await waitFor(async () => (await fetch(`${base}/api/task/sec-t1`, { headers: bearer(await token("gonzo")) })).status === 200, 15_000, 50);
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it.skipIf(!embeddedAvailable)("defect 1: the example application takes the platform's Bearer tokens and refuses the header once a key is configured", async () => {
    const form = { subject: "Laptop", applicant: "kermit", amount: 1000, currency: "EUR" };
    const headerOnly = await fetch(`${app}/api/request`, { method: "POST", headers: { "X-Current-User-ID": "kermit", "Content-Type": "application/json" }, body: JSON.stringify(form) });
    expect(headerOnly.status).toBe(401);
    const approveAsFozzy = await fetch(`${app}/api/approve-request/id/whatever`, { method: "POST", headers: { "X-Current-User-ID": "fozzy", "Content-Type": "application/json" }, body: JSON.stringify({ decision: "APPROVE" }) });
    expect(approveAsFozzy.status).toBe(401);
    const withToken = await fetch(`${app}/api/request`, { method: "POST", headers: { ...bearer(await token("kermit")), "Content-Type": "application/json" }, body: JSON.stringify(form) });
    expect(withToken.status).toBe(201);
  });

  it("defect 2: claim, unclaim, defer, undefer and complete of a task gonzo holds are 409 naming gonzo, and nothing is recorded", async () => {
    const piggy = bearer(await token("piggy"));
    const kermit = bearer(await token("kermit"));
    const before = await streamOf("sec-t1");
    const attempts = [
      await fetch(`${base}/api/task/sec-t1/claim`, { method: "POST", headers: piggy }),
      await fetch(`${base}/api/task/sec-t1/unclaim`, { method: "POST", headers: kermit }),
      await fetch(`${base}/api/task/sec-t1/defer`, { method: "POST", headers: { ...piggy, "Content-Type": "application/json" }, body: JSON.stringify("2027-01-15T09:00:00Z") }),
      await fetch(`${base}/api/task/sec-t1/undefer`, { method: "POST", headers: piggy }),
      await fetch(`${base}/api/task/sec-t1/complete`, { method: "POST", headers: { ...piggy, "Content-Type": "application/json" }, body: JSON.stringify({ approveDecision: "APPROVE" }) }),
    ];
    for (const response of attempts) {
      expect(response.status).toBe(409);
      const body = await response.json();
      expect(body).toMatchObject({ type: "CONFLICT", message: expect.stringContaining("claimed by gonzo") });
    }
    expect(await streamOf("sec-t1")).toEqual(before);
    // gonzo, who holds it, may.
    expect((await fetch(`${base}/api/task/sec-t1/defer`, { method: "POST", headers: { ...bearer(await token("gonzo")), "Content-Type": "application/json" }, body: JSON.stringify("2027-01-15T09:00:00Z") })).status).toBe(204);
  });

  it("defect 3: with a JWT key the X-Current-User-ID header and ?user= are refused", async () => {
    expect((await fetch(`${base}/api/tasks`, { headers: { "X-Current-User-ID": "kermit" } })).status).toBe(401);
    const stream = await readStream(`${base}/api/events?user=piggy`, {}, 2000);
    expect(stream.status).toBe(401);
    expect((await fetch(`${base}/api/tasks`, { headers: bearer(await token("kermit")) })).status).toBe(200);
  });

  it("defect 5: operator endpoints need the operator group; streams are capped; host details for operators only", async () => {
    const operator = bearer(await token("ops", { groups: ["operators"] }));
    const kermit = bearer(await token("kermit"));
    for (const path of ["/metrics", "/api/dashboard", "/api/users"]) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(401);
      expect((await fetch(`${base}${path}`, { headers: kermit })).status, path).toBe(403);
      expect((await fetch(`${base}${path}`, { headers: operator })).status, path).toBe(200);
    }
    expect((await readStream(`${base}/api/dashboard/events`, {}, 1000)).status).toBe(401);
    expect(await (await fetch(`${base}/metrics`, { headers: operator })).text()).toMatch(/^os_hostname/m);
    // Streams per user: 2.
    const controllers = [new AbortController(), new AbortController()];
    const open = await Promise.all(controllers.map((c) => fetch(`${base}/api/dashboard/events`, { headers: operator, signal: c.signal })));
    expect(open.map((r) => r.status)).toEqual([200, 200]);
    const third = await fetch(`${base}/api/dashboard/events`, { headers: operator });
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBeTruthy();
    controllers.forEach((c) => c.abort());
  });

  it("defect 4: a body that is not in its Content-Encoding is a 400, not a 500", async () => {
    const response = await fetch(`${base}/api/task/x/complete`, { method: "POST", headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" }, body: "this is not gzip" });
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.type).toBe("BAD_REQUEST");
    expect(JSON.stringify(body)).not.toMatch(/at .*\.js|stack/i);
  });

  it("defect 6: NUL characters and lone surrogates, in values or keys, are 400 naming the field", async () => {
    const gonzo = { ...bearer(await token("gonzo")), "Content-Type": "application/json" };
    for (const raw of ['{"comment":"a\\u0000b"}', '{"a\\u0000":1}', '{"comment":"\\ud800"}']) {
      const response = await fetch(`${base}/api/task/sec-t1/complete`, { method: "POST", headers: gonzo, body: raw });
      expect(response.status, raw).toBe(400);
      const body = await response.json();
      expect(body.type).toBe("VALIDATION_ERROR");
      expect(body.data[0].field).toMatch(/^body/);
    }
    if (embeddedAvailable) {
      const response = await fetch(`${app}/api/request`, { method: "POST", headers: { ...bearer(await token("kermit")), "Content-Type": "application/json" }, body: '{"subject":"x\\u0000","applicant":"kermit","amount":1,"currency":"EUR"}' });
      expect(response.status).toBe(400);
    }
    expect(await streamOf("sec-t1")).not.toContain("TaskToBeCompleted");
  });

  it("defect 7: bodies nested 3,000 and 5,000 levels are 400", async () => {
    const gonzo = { ...bearer(await token("gonzo")), "Content-Type": "application/json" };
    for (const depth of [3000, 5000]) {
      const raw = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
      const response = await fetch(`${base}/api/task/sec-t1/complete`, { method: "POST", headers: gonzo, body: raw });
      expect(response.status).toBe(400);
      expect((await response.json()).message).not.toMatch(/stack/i);
    }
  });

  it("defect 8: __proto__ as a filter or sort path is 400", async () => {
    const kermit = bearer(await token("kermit"));
    for (const query of ["filters=__proto__.polluted%3D1", "sort=payload.__proto__", "filters=constructor.prototype%3D1"]) {
      const response = await fetch(`${base}/api/tasks?${query}`, { headers: kermit });
      expect(response.status, query).toBe(400);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("defect 9: OPTIONS never runs the action; a preflight from an allowed origin is answered by the gateway", async () => {
    const before = await streamOf("sec-t1");
    const response = await fetch(`${base}/api/task/sec-t1/defer`, {
      method: "OPTIONS",
      headers: { ...bearer(await token("gonzo")), Origin: ORIGIN, "Access-Control-Request-Method": "POST", "Content-Type": "application/json" },
      body: JSON.stringify("2027-05-01T00:00:00Z"),
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(response.headers.get("access-control-allow-methods")).toContain("POST");
    const foreign = await fetch(`${base}/api/tasks`, { method: "OPTIONS", headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" } });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    await new Promise((r) => setTimeout(r, 200));
    expect(await streamOf("sec-t1")).toEqual(before);
  });

  it("defect 10: text, form and multipart bodies are 415; an impossible date is 400", async () => {
    const gonzo = bearer(await token("gonzo"));
    const before = await streamOf("sec-t1");
    const form = new FormData();
    form.set("approveDecision", "APPROVE");
    const bodies: [string | undefined, BodyInit][] = [
      ["text/plain", '{"approveDecision":"APPROVE"}'],
      ["application/x-www-form-urlencoded", "approveDecision=APPROVE"],
      [undefined, form],
    ];
    for (const [type, body] of bodies) {
      const response = await fetch(`${base}/api/task/sec-t1/complete`, { method: "POST", headers: { ...gonzo, ...(type ? { "Content-Type": type } : {}) }, body });
      expect(response.status, type ?? "multipart").toBe(415);
    }
    const impossible = await fetch(`${base}/api/task/sec-t1/defer`, { method: "POST", headers: { ...gonzo, "Content-Type": "application/json" }, body: JSON.stringify("2027-02-30T00:00:00Z") });
    expect(impossible.status).toBe(400);
    expect(await streamOf("sec-t1")).toEqual(before);
  });

  it("defect 12: a token without exp, or living longer than the maximum, is refused; an event stream ends when its token expires", async () => {
    expect((await fetch(`${base}/api/tasks`, { headers: bearer(await token("kermit", { expiresIn: null })) })).status).toBe(401);
    expect((await fetch(`${base}/api/tasks`, { headers: bearer(await token("kermit", { expiresIn: "2h" })) })).status).toBe(401);
    const shortLived = await token("kermit", { expiresIn: "3s" });
    const stream = await readStream(`${base}/api/events`, bearer(shortLived), 10_000);
    expect(stream.status).toBe(200);
    expect(stream.endedAfterMs).not.toBeNull();
    expect(stream.endedAfterMs!).toBeLessThan(6000);
    expect(stream.text).toContain("token-expired");
  });

  it("defect 13: security headers everywhere, 401 echoes nothing, TRACE and a method a path does not take are 405, the filter grammar is in the OpenAPI document", async () => {
    const paths = ["/", "/dashboard/", "/swagger-ui/", "/api/openapi.json", "/api/health", "/assets/tasklist.js"];
    for (const path of paths) {
      const response = await fetch(`${base}${path}`);
      expect(response.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'");
      expect(response.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(response.headers.get("referrer-policy"), path).toBe("no-referrer");
    }
    if (embeddedAvailable) {
      for (const path of ["/forms/", "/swagger-ui/", "/api/openapi.json"]) expect((await fetch(`${app}${path}`)).headers.get("content-security-policy"), path).toContain("frame-ancestors");
    }
    const long = "x".repeat(3000);
    const refused = await fetch(`${base}/api/tasks`, { headers: bearer(`${long}.${long}.${long}`) });
    expect(refused.status).toBe(401);
    expect(await refused.text()).not.toContain(long);
    const trace = await fetch(`${base}/api/tasks`, { method: "TRACE" } as RequestInit).catch(() => null);
    // fetch refuses TRACE itself; ask with node:http.
    if (trace === null) {
      const { request } = await import("node:http");
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${base}/api/tasks`, { method: "TRACE" }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(405);
    } else {
      expect(trace.status).toBe(405);
    }
    // A known path with a method it does not take is 405 naming the ones it does; an unknown path stays 404.
    const readOnly = await fetch(`${base}/api/tasks`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(readOnly.status).toBe(405);
    expect(readOnly.headers.get("allow")).toBe("GET, OPTIONS");
    expect((await readOnly.json()).type).toBe("METHOD_NOT_ALLOWED");
    const commandOnly = await fetch(`${base}/polyflow-platform/rest/task/some-id/claim`);
    expect(commandOnly.status).toBe(405);
    expect(commandOnly.headers.get("allow")).toBe("POST, OPTIONS");
    expect((await fetch(`${base}/api/no-such-path`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${base}/api/no-such-path`)).status).toBe(404);
    if (embeddedAvailable) {
      const appReadOnly = await fetch(`${app}/api/openapi.json`, { method: "POST" });
      expect(appReadOnly.status).toBe(405);
      expect(appReadOnly.headers.get("allow")).toContain("GET");
    }
    const document = await (await fetch(`${base}/api/openapi.json`)).json();
    const filters = document.paths["/api/tasks"].get.parameters.find((p: { name: string }) => p.name === "filters");
    const sort = document.paths["/api/tasks"].get.parameters.find((p: { name: string }) => p.name === "sort");
    expect(filters.schema.items.pattern).toBeTruthy();
    expect(new RegExp(filters.schema.items.pattern).test("task.name%Approve")).toBe(true);
    expect(new RegExp(sort.schema.items.pattern).test("-task.priority")).toBe(true);
  });
});

describe("issue 13: rate limit and demo mode", () => {
  let broker: ServiceBroker;
  let base: string;

  beforeAll(async () => {
    broker = await startBroker([{ ...ApiService, settings: { ...ApiService.settings, port: 0, ip: "127.0.0.1", securityEnv: { RATE_LIMIT: "5", AUTH_HEADER_ENABLED: "true" } } }], {
      metrics: { enabled: true, collectProcessMetrics: true, reporter: [new TaskpoolPrometheusReporter({ port: 0 }) as never] },
    } as never);
    base = `http://127.0.0.1:${(broker.getLocalService("api") as any).server.address().port}`;
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it("defect 5 (demo mode): /metrics leaves out host details for non-operators", async () => {
    const text = await (await fetch(`${base}/metrics`, { headers: { "X-Current-User-ID": "piggy" } })).text();
    expect(text).not.toMatch(/^os_hostname|^os_network_address|^os_user_username|^process_arguments/m);
    expect(text).toMatch(/^process_uptime/m);
  });

  it("defect 11: invented user ids and tokens share their address's limit; a user has their own; every 429 has Retry-After", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const headers: Record<string, string> = i % 2 === 0 ? { "X-Current-User-ID": `nobody-${i}` } : { Authorization: `Bearer forged.${i}.token` };
      const response = await fetch(`${base}/api/tasks`, { headers });
      statuses.push(response.status);
      if (response.status === 429) expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    // Requests that fail to parse count against the address too (defect 4: 0 × 429 before).
    const bad = await fetch(`${base}/api/task/x/complete`, { method: "POST", headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" }, body: "not gzip" });
    expect(bad.status).toBe(429);
    expect(bad.headers.get("retry-after")).toMatch(/^\d+$/);
    // kermit has a bucket of his own (the view is not running here: 503 is past the gate), then is limited too.
    const kermit: number[] = [];
    for (let i = 0; i < 7; i++) kermit.push((await fetch(`${base}/api/profile`, { headers: { "X-Current-User-ID": "kermit" } })).status);
    expect(kermit.slice(0, 5).every((s) => s === 200)).toBe(true);
    expect(kermit.at(-1)).toBe(429);
  });
});
