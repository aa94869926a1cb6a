// Browser test of the basket demo: a real Chromium (Debian's, driven by playwright-core) uses the
// page as a person would. Run it through ./run.sh, which starts Redis and the demo and sets:
//   BASE_URL    the demo, e.g. http://127.0.0.1:PORT
//   SCREENSHOT  where to save a picture of the page (default: artifacts/basket.png)
//   CHROMIUM    the browser binary (default: /usr/bin/chromium)
// Steps run in order and build on each other; the last line is "browser: N passed, N failed".
// Every page is watched from its first request: the last step fails on any JavaScript error, any
// console error or failed request that no step declared (expectHttpError), such as a 404 for
// /favicon.ico.

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8080";
const SCREENSHOT = process.env.SCREENSHOT ?? "artifacts/basket.png";
const COOKIE_NAME = process.env.COOKIE_NAME ?? "dmsession";
const TIMEOUT_MS = 15_000;

const tid = (id) => `[data-testid="${id}"]`;

/** Waits until the element with data-testid `id` shows exactly `text`. */
async function waitText(page, id, text) {
  try {
    await page.waitForFunction(
      ([selector, want]) => {
        const el = document.querySelector(selector);
        return el !== null && el.textContent.trim() === want;
      },
      [tid(id), text],
      { timeout: TIMEOUT_MS },
    );
  } catch (e) {
    const actual = await page.locator(tid(id)).first().textContent().catch(() => "(missing)");
    throw new Error(`${id}: expected ${JSON.stringify(text)}, page shows ${JSON.stringify(actual)}`);
  }
}

async function visible(page, id) {
  await page.locator(tid(id)).waitFor({ state: "visible", timeout: TIMEOUT_MS });
}

// What the pages said that a person would see in the developer console.
const consoleErrors = []; // console.error messages and Chromium's "Failed to load resource" lines
const pageErrors = []; // uncaught exceptions and unhandled rejections
const requestFailures = []; // requests that got no response at all
const httpErrors = []; // responses with a status of 400 or more: { method, path, status }
const expectedHttpErrors = []; // declared by the steps that provoke them, in the same shape

/** Declares that the next request `method path` is meant to fail with `status`. */
function expectHttpError(method, path, status) {
  expectedHttpErrors.push({ method, path, status });
}

function watch(page) {
  page.on("console", (message) => {
    if (message.type() === "error") {
      consoleErrors.push({ text: message.text(), url: message.location()?.url ?? "" });
    }
  });
  page.on("pageerror", (error) => pageErrors.push(String(error?.stack ?? error)));
  page.on("requestfailed", (request) => {
    // A navigation (reload) may abort a fetch still in flight; that is not an error of the page.
    const why = request.failure()?.errorText ?? "";
    if (why !== "net::ERR_ABORTED") requestFailures.push(`${request.method()} ${request.url()}: ${why}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) {
      const url = new URL(response.url());
      httpErrors.push({ method: response.request().method(), path: url.pathname, status: response.status() });
    }
  });
}

async function open(context) {
  const page = await context.newPage();
  watch(page);
  page.setDefaultTimeout(TIMEOUT_MS);
  await page.goto(BASE_URL + "/");
  await page.locator("body[data-ready=true]").waitFor({ timeout: TIMEOUT_MS });
  return page;
}

async function sessionCookie(context) {
  const cookies = await context.cookies(BASE_URL);
  return cookies.find((c) => c.name === COOKIE_NAME)?.value ?? null;
}

/** The flash messages the page shows, once it has read them (after a load or an action). */
async function flashes(page) {
  await page.locator(`${tid("flashes")}[data-loaded=true]`).waitFor({ state: "attached" });
  return page.locator(tid("flash")).allTextContents();
}

async function basketSkus(page) {
  return page.locator(`${tid("basket-lines")} tr`).evaluateAll((rows) =>
    rows.map((row) => row.dataset.testid.replace(/^basket-line-/, "")),
  );
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

let passed = 0;
let failed = 0;
async function step(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${String(error?.message ?? error).split("\n").join("\n     ")}`);
  }
}

const shopper = await browser.newContext({ viewport: { width: 1100, height: 640 } });
let page;
let firstCookie = null;

try {
  await step("the page shows the products and an empty basket, and sets no cookie", async () => {
    page = await open(shopper);
    await visible(page, "product-mug-enamel");
    assert.ok((await page.locator(`${tid("products")} tr`).count()) >= 3, "at least 3 products");
    await visible(page, "basket-empty");
    await waitText(page, "basket-total", "€0.00");
    assert.equal(await sessionCookie(shopper), null, "no cookie before anything is added");
  });

  await step("added items are in the basket and stay there after a reload", async () => {
    await page.click(tid("add-mug-enamel"));
    await waitText(page, "qty-mug-enamel", "1");
    await page.click(tid("add-mug-enamel"));
    await waitText(page, "qty-mug-enamel", "2");
    await page.click(tid("add-tea-earl-grey"));
    await waitText(page, "qty-tea-earl-grey", "1");
    await page.click(tid("add-biscuits-oat"));
    await waitText(page, "qty-biscuits-oat", "1");
    await page.click(tid("remove-biscuits-oat"));
    await page.locator(tid("basket-line-biscuits-oat")).waitFor({ state: "detached" });
    await waitText(page, "basket-total", "€30.50");
    assert.equal(await page.locator(tid("error")).isVisible(), false, "no error shown");
    firstCookie = await sessionCookie(shopper);
    assert.ok(firstCookie, "a session cookie once the basket has something in it");

    await page.reload();
    await page.locator("body[data-ready=true]").waitFor();
    await waitText(page, "qty-mug-enamel", "2");
    await waitText(page, "qty-tea-earl-grey", "1");
    await waitText(page, "basket-total", "€30.50");
    assert.deepEqual(await basketSkus(page), ["mug-enamel", "tea-earl-grey"]);
  });

  await step("an add shows its flash message once; other requests do not take it", async () => {
    const visitor = await browser.newContext();
    try {
      const other = await open(visitor);
      assert.deepEqual(await flashes(other), [], "nothing to show on a first visit");
      await other.click(tid("add-tea-earl-grey"));
      await waitText(other, "flash", "Added Earl Grey tea, 100 g");
      await other.reload();
      await other.locator("body[data-ready=true]").waitFor();
      assert.deepEqual(await flashes(other), [], "shown once: not again after a reload");
      // A message is left alone by requests that do not read messages (the basket, the token).
      const taken = await other.evaluate(async () => {
        await fetch("/api/basket/items", {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ sku: "mug-enamel", qty: 1 }),
        });
        await fetch("/api/basket");
        await fetch("/api/csrf");
        const first = await (await fetch("/api/flashes")).json();
        const second = await (await fetch("/api/flashes")).json();
        return [first.flashes, second.flashes];
      });
      assert.deepEqual(taken, [["Added Enamel mug"], []]);
    } finally {
      await visitor.close();
    }
  });

  await step("a second, fresh browser sees an empty basket", async () => {
    const stranger = await browser.newContext();
    try {
      const other = await open(stranger);
      await visible(other, "basket-empty");
      assert.deepEqual(await basketSkus(other), []);
      await waitText(other, "basket-total", "€0.00");
    } finally {
      await stranger.close();
    }
  });

  await step("a refused login shows the server's message and changes nothing", async () => {
    assert.equal(await page.locator('label[for="login-name"]').textContent(), "User name");
    expectHttpError("POST", "/api/login", 422);
    await page.fill(tid("login-name"), "   ");
    await page.click(tid("login-submit"));
    await visible(page, "error");
    assert.equal(
      await page.locator(tid("error")).textContent(),
      "user name must be text of 1 to 64 characters",
      "the message names the field as its label does",
    );
    assert.equal(await sessionCookie(shopper), firstCookie, "no rotation");
    assert.equal(await page.locator(tid("current-user")).isVisible(), false);
    await waitText(page, "qty-mug-enamel", "2");
  });

  let tokenBeforeLogin = null;
  await step("the page gets the session's CSRF token and keeps it", async () => {
    tokenBeforeLogin = await page.evaluate(() => csrf());
    assert.match(tokenBeforeLogin, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await page.evaluate(() => csrf()), tokenBeforeLogin, "fetched once, then kept");
    const fresh = await page.evaluate(async () => (await api("GET", "/api/csrf")).token);
    assert.equal(fresh, tokenBeforeLogin, "the server's token is stable within the session");
    assert.equal(await sessionCookie(shopper), firstCookie, "asking for it changes no cookie");
  });

  await step("logging in changes the session cookie, keeps the basket and says so once", async () => {
    await page.fill(tid("login-name"), "Ada Lovelace");
    await page.click(tid("login-submit"));
    await visible(page, "current-user");
    await waitText(page, "user-name", "Ada Lovelace");
    await waitText(page, "flash", "Signed in");
    const cookie = await sessionCookie(shopper);
    assert.ok(cookie, "still a session cookie");
    assert.notEqual(cookie, firstCookie, "login must give the session a new id");
    const token = await page.evaluate(() => csrf());
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(token, tokenBeforeLogin, "login must replace the CSRF token");
    await page.reload();
    await page.locator("body[data-ready=true]").waitFor();
    await waitText(page, "user-name", "Ada Lovelace");
    await waitText(page, "qty-mug-enamel", "2");
    await waitText(page, "basket-total", "€30.50");
    assert.deepEqual(await flashes(page), [], "\"Signed in\" is shown once");
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  await step("a second browser signed in as the same user is ended from the first one", async () => {
    const laptop = await browser.newContext();
    try {
      const other = await open(laptop);
      await other.click(tid("add-tea-earl-grey"));
      await waitText(other, "qty-tea-earl-grey", "1");
      await other.fill(tid("login-name"), "Ada Lovelace");
      await other.click(tid("login-submit"));
      await waitText(other, "user-name", "Ada Lovelace");
      // The first browser lists both sessions, its own marked, and ends the other one.
      await page.reload();
      await page.locator("body[data-ready=true]").waitFor();
      await visible(page, "sessions-panel");
      await page.locator(tid("session-other")).waitFor({ timeout: TIMEOUT_MS });
      assert.equal(await page.locator(tid("session-current")).count(), 1);
      assert.equal(await page.locator(tid("session-other")).count(), 1);
      await page.click(tid("logout-others"));
      await page.locator(tid("session-other")).waitFor({ state: "detached" });
      // The other browser's next request is anonymous, with an empty basket.
      await other.reload();
      await other.locator("body[data-ready=true]").waitFor();
      await visible(other, "login-form");
      await visible(other, "basket-empty");
      assert.deepEqual(await basketSkus(other), []);
      assert.equal(await other.locator(tid("sessions-panel")).isVisible(), false);
      // The first one is still signed in with its basket.
      await waitText(page, "user-name", "Ada Lovelace");
      await waitText(page, "qty-mug-enamel", "2");
    } finally {
      await laptop.close();
    }
  });

  await step("logging out empties the basket and drops the cookie", async () => {
    await page.click(tid("logout"));
    await visible(page, "basket-empty");
    await visible(page, "login-form");
    await waitText(page, "basket-total", "€0.00");
    assert.equal(await sessionCookie(shopper), null, "the cookie is expired");
    await page.reload();
    await page.locator("body[data-ready=true]").waitFor();
    await visible(page, "basket-empty");
    assert.deepEqual(await basketSkus(page), []);
  });

  await step("the console shows no JavaScript errors and no unexpected failed requests", async () => {
    // Let late events (a favicon request, a last fetch) arrive.
    await page.waitForTimeout(300);
    assert.deepEqual(pageErrors, [], "uncaught JavaScript errors");
    assert.deepEqual(requestFailures, [], "requests that got no response");
    const key = (e) => `${e.status} ${e.method} ${e.path}`;
    const expected = expectedHttpErrors.map(key).sort();
    assert.deepEqual(httpErrors.map(key).sort(), expected, "responses of 400 or more, against those the steps provoked");
    // Chromium logs every response of 400 or more as a console error ("Failed to load resource:
    // the server responded with a status of 422 ..."): exactly those, one each, are expected.
    const unexplained = consoleErrors.filter(
      (e) => !/^Failed to load resource: the server responded with a status of \d{3}\b/.test(e.text),
    );
    assert.deepEqual(unexplained, [], "console errors other than the expected failed loads");
    const failedLoads = consoleErrors.map((e) => {
      const status = Number(/status of (\d{3})/.exec(e.text)[1]);
      return `${status} ${new URL(e.url).pathname}`;
    });
    assert.deepEqual(
      failedLoads.sort(),
      expectedHttpErrors.map((e) => `${e.status} ${e.path}`).sort(),
      "'Failed to load resource' lines, against the responses the steps provoked",
    );
  });
} finally {
  await browser.close();
}

console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
