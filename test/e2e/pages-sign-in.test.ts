// The browser pages on a gateway that verifies tokens (a JWT key, header authentication off — production mode):
// the dashboard and the task list send this tab's token, take it from the address's fragment or the sign-in form,
// and say so when the gateway refuses them — instead of showing an empty page (issue 13's last finding). Read by
// Debian's Chromium, as a person would, against the platform in this process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import type { ServiceBroker } from "moleculer";
import { SignJWT } from "jose";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { call, launchChromium, startBroker, unique } from "../helpers.ts";
import { createApprovalService } from "../../apps/approval/approval.service.ts";
import { APPLICATION_NAME } from "../../apps/approval/process.ts";
import { embeddedPlatform, gatewayBase } from "../platform.ts";

const SECRET = "the HS256 secret of the sign-in page test, long enough";
const embeddedAvailable = existsSync(fileURLToPath(new URL("../../engine/embedded/engine.ts", import.meta.url)));

function token(username: string, groups: string[]): Promise<string> {
  return new SignJWT({ preferred_username: username, groups }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("10m").sign(new TextEncoder().encode(SECRET));
}

describe("the pages in JWT mode", () => {
  let broker: ServiceBroker;
  let browser: Browser;
  let base = "";
  let app = "";
  const taskId = unique("signin-task");
  const createTask = (id: string, name: string) =>
    call(broker, "task.create", {
      id,
      sourceReference: { type: "process", instanceId: `pi-${id}`, executionId: "ex", definitionId: "signin:1", definitionKey: "signin", name: "Sign-in", applicationName: "signin-app" },
      taskDefinitionKey: "approve",
      name,
      candidateGroups: ["muppetshow"],
    });

  beforeAll(async () => {
    const securityEnv = { JWT_SECRET: SECRET, OPERATOR_GROUP: "operators", RATE_LIMIT: "100000" };
    const services = embeddedPlatform(securityEnv);
    if (embeddedAvailable) {
      // The example application's gateway, with the same authentication (its forms are the third page).
      services.push(
        createApprovalService({
          env: securityEnv,
          settings: { port: 0, host: "127.0.0.1", engineUrl: null, databaseUrl: null, pgliteDir: "memory", embeddedEngine: { applicationName: APPLICATION_NAME, databaseUrl: null, pgliteDir: "memory" } },
        }),
      );
    }
    broker = await startBroker(services);
    base = gatewayBase(broker);
    if (embeddedAvailable) app = `http://127.0.0.1:${((await call(broker, "approval.status")) as { port: number }).port}`;
    await createTask(taskId, "Approve the sign-in");
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await broker?.stop();
  });

  async function open(path: string): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(`${base}${path}`);
    await page.waitForSelector("body[data-ready]", { timeout: 15_000 });
    return { page, errors, close: () => context.close() };
  }

  it("dashboard: without a token it asks for one; a non-operator's token is refused as such; an operator's shows the cluster live", async () => {
    const anonymous = await open("/dashboard/");
    await anonymous.page.waitForSelector("#sign-in", { timeout: 10_000 });
    expect(await anonymous.page.textContent("#sign-in .reason")).toContain("needs a signed-in operator");
    expect(await anonymous.page.textContent("#connection")).toBe("Not signed in");
    expect(await anonymous.page.$("#nodes")).toBeNull();

    // A token pasted into the form: kept for this tab, the page reloads and shows the cluster.
    await anonymous.page.fill("#access-token", await token("statler", ["operators"]));
    await Promise.all([anonymous.page.waitForEvent("load"), anonymous.page.click("#sign-in button[type=submit]")]);
    await anonymous.page.waitForSelector(`#nodes tr[data-node="${broker.nodeID}"]`, { timeout: 15_000 });
    await anonymous.page.waitForFunction(() => document.querySelector("#connection")?.textContent?.startsWith("Live"), undefined, { timeout: 10_000 });
    expect(anonymous.errors).toEqual([]);
    await anonymous.close();

    const notOperator = await open(`/dashboard/#access_token=${await token("kermit", ["muppetshow"])}`);
    await notOperator.page.waitForSelector("#sign-in", { timeout: 10_000 });
    expect(await notOperator.page.textContent("#sign-in .reason")).toContain("not as an operator");
    expect(await notOperator.page.textContent("#connection")).toBe("Not an operator");
    await notOperator.close();

    const operator = await open(`/dashboard/#access_token=${await token("statler", ["operators"])}`);
    // The token left the address bar (it is in this tab's storage), and the stream and snapshots use it.
    expect(operator.page.url()).toBe(`${base}/dashboard/`);
    await operator.page.waitForSelector(`#nodes tr[data-node="${broker.nodeID}"]`, { timeout: 15_000 });
    await operator.page.waitForFunction(() => document.querySelector("#connection")?.textContent?.startsWith("Live"), undefined, { timeout: 10_000 });
    expect(await operator.page.$("#sign-in")).toBeNull();
    // Signing out forgets the token: the page asks again.
    await Promise.all([operator.page.waitForEvent("load"), operator.page.click("#sign-out")]);
    await operator.page.waitForSelector("#sign-in", { timeout: 10_000 });
    expect(operator.errors).toEqual([]);
    await operator.close();
  });

  it("task list: without a token it asks for one; with kermit's token it shows his tasks and streams live", async () => {
    const anonymous = await open("/");
    await anonymous.page.waitForSelector("#sign-in", { timeout: 10_000 });
    expect(await anonymous.page.textContent("#sign-in .reason")).toContain("sign in with an access token");
    expect(await anonymous.page.isHidden("#views")).toBe(true);
    await anonymous.close();

    const kermit = await open(`/#access_token=${await token("kermit", ["muppetshow"])}`);
    expect(kermit.page.url()).toBe(`${base}/`);
    await kermit.page.waitForSelector(`#tasks-table tr[data-task-id="${taskId}"]`, { timeout: 15_000 });
    expect(await kermit.page.inputValue("#user")).toBe("kermit");
    expect(await kermit.page.textContent("#profile")).toContain("muppetshow");
    await kermit.page.waitForSelector("#live-status[data-state=live]", { timeout: 15_000 });

    // Live over the stream, which carries the token as ?access_token= (EventSource sends no headers).
    const live = unique("signin-live");
    await createTask(live, "Approve live");
    await kermit.page.waitForSelector(`#tasks-table tr[data-task-id="${live}"].new`, { timeout: 10_000 });
    expect(kermit.errors).toEqual([]);
    await kermit.close();
  });

  it.skipIf(!embeddedAvailable)("the example application's forms: ask for a token on 401, take one handed over after the route", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    // Without a token the header user is refused (JWT mode): the form asks for a token instead of failing.
    await page.goto(`${app}/forms/#/requests`);
    await page.waitForSelector("#sign-in", { timeout: 15_000 });
    expect(await page.textContent("#sign-in .reason")).toContain("Sign in with an access token");
    // Pasted: the requests list of kermit (none yet).
    await page.fill("#access-token", await token("kermit", ["muppetshow"]));
    await page.click("#sign-in button[type=submit]");
    await page.waitForSelector("h1:text('My requests')", { timeout: 15_000 });
    // Handed over after the route: kept, taken out of the address, and used for a submission.
    const other = await context.newPage();
    await other.goto(`${app}/forms/#/start?access_token=${await token("piggy", ["muppetshow"])}`);
    await other.waitForSelector("#subject", { timeout: 15_000 });
    expect(other.url()).toBe(`${app}/forms/#/start`);
    expect(await other.$("#sign-out")).not.toBeNull();
    expect(errors).toEqual([]);
    await context.close();
  });
});
