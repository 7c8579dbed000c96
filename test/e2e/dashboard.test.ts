// The browser pages against a real cluster: two Taskpool processes over the real NATS server, Debian's Chromium
// (headless, through playwright-core) reading the pages as a person would.
//
// - Dashboard (/dashboard/): both nodes online, each service on its node, the view processor's position; a task
//   created moves the event store head and the processor; a node killed with SIGKILL is shown offline.
// - Task list (/): kermit sees a task for his group appear live (over the event stream), claims it without an
//   error, and a refused filter is shown as such; beyond the count cap (VIEW_COUNT_CAP=2 here) the list says
//   "3+" rather than a wrong total, pages on while pages are full, and says where a capped list ends.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import type { Browser, Page } from "playwright-core";
import { call, freePort, launchChromium, spawnNode, startBroker, testNatsUrl, unique, waitFor, type NodeProcess } from "../helpers.ts";



/** What the dashboard shows, read from the page's text. */
interface DashboardView {
  connection: string | null;
  head: string | null;
  nodes: Record<string, { status: string | null; services: string[] }>;
  services: Record<string, string[]>;
  processors: Record<string, { status: string | null; position: string | null; lag: string | null; owner: string | null }>;
}

function readDashboard(page: Page): Promise<DashboardView> {
  return page.evaluate(() => {
    const text = (el: Element | null | undefined) => el?.textContent?.trim() ?? null;
    const view: DashboardView = { connection: text(document.querySelector("#connection")), head: text(document.querySelector("#eventstore [data-field=head]")), nodes: {}, services: {}, processors: {} };
    for (const row of Array.from(document.querySelectorAll<HTMLElement>("#nodes tr[data-node]"))) {
      view.nodes[row.dataset.node!] = {
        status: text(row.querySelector("[data-node-status]")),
        services: Array.from(row.querySelectorAll("[data-node-service]")).map((el) => text(el)!).sort(),
      };
    }
    for (const card of Array.from(document.querySelectorAll<HTMLElement>("#services [data-service]"))) {
      view.services[card.dataset.service!] = Array.from(card.querySelectorAll("[data-service-node]")).map((el) => el.firstChild?.textContent?.trim() ?? "").sort();
    }
    for (const row of Array.from(document.querySelectorAll<HTMLElement>("#processors tr[data-processor]"))) {
      view.processors[row.dataset.processor!] = {
        status: text(row.querySelector("[data-field=status]")),
        position: text(row.querySelector("[data-field=position]")),
        lag: text(row.querySelector("[data-field=lag]")),
        owner: text(row.querySelector("[data-field=owner]")),
      };
    }
    return view;
  });
}

/** Waits until the page shows what `check` wants; on timeout says what the page showed last. */
async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  let last: T | undefined;
  try {
    return await waitFor(async () => {
      last = await read();
      return check(last) ? last : null;
    }, timeoutMs, 250);
  } catch {
    throw new Error(`The page did not show ${what} within ${timeoutMs} ms; it showed:\n${JSON.stringify(last, null, 2)}`);
  }
}

const positionOf = (text: string | null | undefined) => {
  const match = /^position (\d+)$/.exec(text ?? "");
  return match ? Number(match[1]) : null;
};

describe("browser pages on a two-process cluster", () => {
  const namespace = unique("e2e");
  const dataDir = mkdtempSync(join(tmpdir(), "taskpool-e2e-"));
  const gatewayId = unique("gateway");
  const echoId = unique("echo");
  const screenshots = process.env.E2E_SCREENSHOT_DIR;
  const nodes: NodeProcess[] = [];
  let nodeA: NodeProcess;
  let nodeB: NodeProcess;
  let client: ServiceBroker | undefined;
  let browser: Browser | undefined;
  let base = "";

  const sourceReference = (instanceId: string) => ({
    type: "process",
    instanceId,
    executionId: instanceId,
    definitionId: "e2e:1",
    definitionKey: "e2e",
    name: "E2E Process",
    applicationName: "e2e-app",
  });

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const common = { TRANSPORTER: testNatsUrl(), NAMESPACE: namespace };
    nodeA = spawnNode({ ...common, NODE_ID: gatewayId, SERVICES: "eventstore,task,view,api", PORT: String(port), APP_PORT: "0", DATA_DIR: dataDir, API_WAIT_TIMEOUT: "1500", VIEW_COUNT_CAP: "2" });
    nodes.push(nodeA);
    nodeB = spawnNode({ ...common, NODE_ID: echoId, SERVICES: "test/fixtures/echo.service.ts" });
    nodes.push(nodeB);
    await Promise.all([nodeA.waitForOutput(new RegExp(`Taskpool node ${gatewayId} started`)), nodeB.waitForOutput(new RegExp(`Taskpool node ${echoId} started`))]);
    client = await startBroker([], { namespace, transporter: testNatsUrl(), nodeID: unique("client") });
    await client.waitForServices(["task", "view", "echo"], 30_000);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await client?.stop();
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("dashboard: shows both nodes and their services, the processor moving with the event store, and a killed node offline", async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(`${base}/dashboard/`);
    await page.waitForSelector("body[data-ready]", { timeout: 15_000 });
    const read = () => readDashboard(page);

    // Both nodes online, every service on the right node, and on no other.
    const expected: Record<string, string[]> = { eventstore: [gatewayId], task: [gatewayId], view: [gatewayId], api: [gatewayId], echo: [echoId] };
    const shown = await until(
      read,
      (v) =>
        v.nodes[gatewayId]?.status === "online" &&
        v.nodes[echoId]?.status === "online" &&
        Object.entries(expected).every(([service, on]) => JSON.stringify(v.services[service]) === JSON.stringify(on)) &&
        positionOf(v.processors.view?.position) !== null,
      30_000,
      "both nodes online with their services and the view processor",
    );
    expect(shown.connection).toMatch(/^Live/);
    expect(shown.nodes[gatewayId]!.services).toEqual(["api", "eventstore", "task", "view"]);
    expect(shown.nodes[echoId]!.services).toEqual(["echo"]);
    for (const [service, on] of Object.entries(expected)) expect(shown.services[service], `service ${service}`).toEqual(on);
    expect(shown.processors.view!.lag).toMatch(/^lag \d+$/);
    expect(shown.processors.view!.owner).toContain(`${gatewayId}/view/`);
    expect(positionOf(shown.head)).not.toBeNull();
    if (screenshots) await page.screenshot({ path: join(screenshots, "dashboard-online.png"), fullPage: true });

    // A task appended: the head moves, and the view processor follows to the same position with no lag.
    const before = positionOf(shown.head)!;
    const created = await call<{ globalPosition: number }>(client!, "task.create", {
      id: unique("dash-task"),
      sourceReference: sourceReference("pi-dash"),
      taskDefinitionKey: "review",
      name: "Dashboard task",
      candidateGroups: ["avengers"],
    });
    expect(created.globalPosition).toBeGreaterThan(before);
    const moved = await until(
      read,
      (v) => positionOf(v.head)! >= created.globalPosition && positionOf(v.processors.view?.position)! >= created.globalPosition && v.processors.view?.lag === "lag 0",
      30_000,
      `the head and the view processor at position ${created.globalPosition}`,
    );
    expect(positionOf(moved.processors.view!.position)).toBe(positionOf(moved.head));

    // Killed without a goodbye: shown offline once the heartbeats stop (timeout 15 s), its service gone.
    await nodeB.kill();
    const killedAt = Date.now();
    const offline = await until(read, (v) => v.nodes[echoId]?.status === "offline", 60_000, `node ${echoId} offline`);
    expect(offline.nodes[gatewayId]!.status).toBe("online");
    expect(offline.services.echo).toBeUndefined();
    expect(offline.nodes[echoId]!.services).toEqual([]);
    console.log(`[e2e] node ${echoId} shown offline ${((Date.now() - killedAt) / 1000).toFixed(1)} s after SIGKILL`);
    if (screenshots) await page.screenshot({ path: join(screenshots, "dashboard-offline.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("task list: a task for kermit's group appears live, the claim is accepted, a bad filter is shown as refused", async () => {
    const context = await browser!.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(`${base}/`);
    await page.waitForSelector("body[data-ready]", { timeout: 15_000 });
    // The pages' ES modules are served as JavaScript (under nosniff a module of another type is not run).
    for (const path of ["/assets/tasklist.js", "/assets/tasklist/api.js", "/assets/page.js", "/dashboard/dashboard.js"]) {
      expect((await fetch(`${base}${path}`)).headers.get("content-type"), path).toMatch(/javascript/);
    }
    await page.selectOption("#user", "kermit");
    // The list is loaded (empty or not) and the event stream is connected.
    await page.waitForSelector("#tasks-range:not(:empty)", { timeout: 15_000 });
    await page.waitForSelector("#live-status[data-state=live]", { timeout: 15_000 }).catch(async () => {
      throw new Error(`The task list's event stream did not connect (the gateway must accept GET /api/events?user=kermit); the page says "${await page.textContent("#live-status")}"`);
    });
    expect(await page.textContent("#profile")).toContain("muppetshow");

    const id = unique("live-task");
    const createdAt = Date.now();
    await call(client!, "task.create", {
      id,
      sourceReference: sourceReference("pi-live"),
      taskDefinitionKey: "approve",
      name: "Approve the muppet show",
      createTime: new Date().toISOString(),
      description: "Created by the e2e test",
      candidateGroups: ["muppetshow"],
      priority: 70,
      payload: { amount: 250 },
    });
    // Marked new: only a task-added event from the stream does that (the fallback polling is every 15 s).
    const row = `#tasks-table tr[data-task-id="${id}"]`;
    await page.waitForSelector(`${row}.new`, { timeout: 10_000 });
    console.log(`[e2e] task shown ${Date.now() - createdAt} ms after task.create`);
    expect(await page.textContent(`${row} .task-name`)).toBe("Approve the muppet show");
    expect(await page.textContent(`${row} [data-field=assignee]`)).toBe("unassigned");
    if (screenshots) await page.screenshot({ path: join(screenshots, "tasklist-live.png"), fullPage: true });

    // Claim: no engine connector here, so the assignee does not change; the request is accepted all the same.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().includes(`/api/task/${encodeURIComponent(id)}/claim?wait=true`) && r.request().method() === "POST"),
      page.click(`${row} button[data-action=claim]`),
    ]);
    expect([202, 204]).toContain(response.status());
    await page.waitForSelector("#notice:not([hidden])");
    expect(await page.getAttribute("#notice", "data-status")).toBe(String(response.status()));
    expect(await page.textContent("#notice .message-text")).toContain("Approve the muppet show");
    expect(await page.isHidden("#error")).toBe(true);

    // A filter the server refuses: the error says which filter and why, the chip is marked.
    await page.fill("#tasks-filter", "task.priority%5");
    await page.press("#tasks-filter", "Enter");
    await page.waitForSelector("#panel-tasks .query-error:not([hidden])", { timeout: 10_000 });
    const message = await page.textContent("#panel-tasks .query-error");
    expect(message).toContain('filter "task.priority%5"');
    expect(message).toContain("VALIDATION_ERROR");
    expect(await page.isVisible('#panel-tasks .chip.invalid[data-filter="task.priority%5"]')).toBe(true);
    expect(await page.textContent("#tasks-table tbody")).toContain("Nothing to show until the filter is fixed.");
    if (screenshots) await page.screenshot({ path: join(screenshots, "tasklist-bad-filter.png"), fullPage: true });

    // Removing it brings the task back.
    await page.click('#panel-tasks .chip[data-filter="task.priority%5"] .chip-remove');
    await page.waitForSelector(row, { timeout: 10_000 });
    expect(await page.isHidden("#panel-tasks .query-error")).toBe(true);

    // Two more tasks: kermit sees three, the view counts to its cap of 2 and says so — the list shows "3+", not
    // "of 2" (a total below what the page shows), and no next page while the page is not full.
    for (const n of [1, 2]) {
      await call(client!, "task.create", { id: unique(`more-${n}`), sourceReference: sourceReference(`pi-more-${n}`), taskDefinitionKey: "approve", name: `More ${n}`, createTime: new Date().toISOString(), candidateGroups: ["muppetshow"] });
    }
    await until(() => page.textContent("#tasks-range"), (text) => text === "1–3 of 3+", 15_000, 'the range "1–3 of 3+"');
    expect(await page.isDisabled("#panel-tasks .next")).toBe(true);
    // Ten, in pages of ten: a full page of a capped list has a next page, which turns out empty — the end.
    for (const n of [3, 4, 5, 6, 7, 8, 9]) {
      await call(client!, "task.create", { id: unique(`more-${n}`), sourceReference: sourceReference(`pi-more-${n}`), taskDefinitionKey: "approve", name: `More ${n}`, createTime: new Date().toISOString(), candidateGroups: ["muppetshow"] });
    }
    await page.selectOption("#panel-tasks .size", "10");
    await until(() => page.textContent("#tasks-range"), (text) => text === "1–10 of 10+", 15_000, 'the range "1–10 of 10+"');
    expect(await page.isEnabled("#panel-tasks .next")).toBe(true);
    await page.click("#panel-tasks .next");
    await until(() => page.textContent("#tasks-range"), (text) => text === "no more after 10", 15_000, 'the range "no more after 10"');
    expect(await page.isDisabled("#panel-tasks .next")).toBe(true);
    expect(await page.isEnabled("#panel-tasks .prev")).toBe(true);
    expect(errors).toEqual([]);
    await context.close();
  });
});
