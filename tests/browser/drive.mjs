// Drives Debian's chromium (headless, through playwright-core) through a list of steps the
// Rust test gives as JSON on argv[2], and prints what it read as one JSON line. The tests in
// tests/connect_page.rs say what a person does; this only does it.
//
// Steps (one key each):
//   {"goto": url}                 open url in the current page
//   {"fill": {field: value}}      type into the form fields named input.<field>
//   {"select": {field: value}}    choose in a select
//   {"check": field}              tick a checkbox
//   {"click": text}               click the link or button with this text, wait for the load
//   {"submit": true}              press the form's submit button, wait for the next page
//   {"set": {selector, value}}    set an element's value (to forge a form field)
//   {"read": label}               record the page: url, status, heading, errors
//   {"screenshot": name}          save <artifacts>/<name>.png
//   {"app": {url, click}}         open the app page, click its button, follow the popup
//   {"result": label}             wait for the app page's window.connectResult and record it
//   {"close": true}               close the current (popup) window, as a person would
//   {"promise": label}            click the current (app) page's #connect, record its result
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLUGBOARD_PLAYWRIGHT || "playwright-core");

const { steps, artifacts } = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.PLUGBOARD_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const context = await browser.newContext({ viewport: { width: 520, height: 720 } });
let page = await context.newPage();
let app = null;
let lastStatus = null;
const reads = {};

function track(p) {
  p.on("response", (r) => {
    if (r.request().isNavigationRequest() && r.request().frame() === p.mainFrame()) {
      lastStatus = r.status();
    }
  });
}
track(page);

async function read() {
  await page.waitForLoadState("load");
  return page.evaluate((status) => {
    const errors = {};
    for (const field of document.querySelectorAll(".field")) {
      const input = field.querySelector("[name^='input.']");
      const messages = [...field.querySelectorAll(".field-error")].map((e) => e.textContent);
      if (input && messages.length) errors[input.name.slice(6)] = messages;
    }
    const fields = {};
    for (const input of document.querySelectorAll("[name^='input.']")) {
      fields[input.name.slice(6)] = { type: input.type || input.tagName.toLowerCase(), value: input.value };
    }
    return {
      url: location.href,
      status,
      heading: document.querySelector("h1")?.textContent ?? null,
      text: document.body?.innerText ?? "",
      general: [...document.querySelectorAll(".error")].map((e) => e.textContent),
      errors,
      fields,
    };
  }, lastStatus);
}

async function navigating(action) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }).catch(() => {}), action()]);
}

try {
  for (const step of steps) {
    const [kind, arg] = Object.entries(step)[0];
    switch (kind) {
      case "goto":
        await page.goto(arg, { waitUntil: "load" });
        break;
      case "fill":
        for (const [k, v] of Object.entries(arg)) await page.fill(`[name="input.${k}"]`, v);
        break;
      case "select":
        for (const [k, v] of Object.entries(arg)) await page.selectOption(`[name="input.${k}"]`, v);
        break;
      case "check":
        await page.check(`[name="input.${arg}"]`);
        break;
      case "click":
        await navigating(() => page.getByText(arg, { exact: true }).click());
        break;
      case "submit":
        await navigating(() => page.click("button[type=submit]"));
        break;
      case "set":
        await page.evaluate(({ selector, value }) => { document.querySelector(selector).value = value; }, arg);
        break;
      case "read":
        reads[arg] = await read();
        break;
      case "screenshot":
        await page.screenshot({ path: path.join(artifacts, `${arg}.png`), fullPage: true });
        break;
      case "app": {
        app = page;
        await app.goto(arg.url, { waitUntil: "load" });
        const [popup] = await Promise.all([context.waitForEvent("page"), app.click(`text=${arg.click}`)]);
        page = popup;
        track(page);
        await page.waitForLoadState("load");
        break;
      }
      case "result": {
        await app.waitForFunction(() => window.connectResult !== undefined, null, { timeout: 30000 });
        reads[arg] = await app.evaluate(() => window.connectResult);
        if (!page.isClosed()) await page.waitForEvent("close", { timeout: 3000 }).catch(() => {});
        reads[arg].popupClosed = page.isClosed();
        page = app;
        break;
      }
      case "close":
        await page.close();
        break;
      case "promise": {
        await page.click("#connect");
        await page.waitForFunction(() => window.connectResult !== undefined, null, { timeout: 30000 });
        reads[arg] = await page.evaluate(() => window.connectResult);
        break;
      }
      default:
        throw new Error(`unknown step ${kind}`);
    }
  }
  console.log(JSON.stringify({ ok: true, reads }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error), reads }));
} finally {
  await browser.close();
}
