// Opens the cardiowatch dashboard in Debian's Chromium and reports what a person sees.
//
// Usage: node dashboard.mjs URL SCREENSHOT_PATH
// Prints one JSON object: patient rows, alerts, counters before and after a pause, live
// updates received over the event stream, and whether a wrong token shows any patient.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const counter = async (page, id) => Number(await page.textContent(`#${id}`));
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(url);
  await page.waitForSelector("tr[data-patient]", { timeout: 20000 });
  await page.waitForSelector(".alert", { timeout: 30000 });
  await page.waitForFunction(() => Number(document.getElementById("c-updates").textContent) > 0,
    null, { timeout: 20000 });
  const before = await counter(page, "c-messages");
  await page.waitForTimeout(3000);
  const after = await counter(page, "c-messages");
  const result = {
    rows: await page.locator("tr[data-patient]").count(),
    alerts: await page.locator(".alert").count(),
    sparklines: await page.locator("svg.spark").count(),
    riskBands: await page.$$eval("tr[data-patient] .pill", pills =>
      pills.map(pill => ({ high: 3, medium: 2, low_medium: 1 })[pill.classList[1]] || 0)),
    recordsBefore: before,
    recordsAfter: after,
    liveUpdates: await counter(page, "c-updates"),
    status: await page.textContent("#status"),
  };
  await page.screenshot({ path: screenshot });

  const stranger = await browser.newPage();
  await stranger.goto(url.replace("token=", "token=x"));
  await stranger.waitForTimeout(1500);
  result.wrongTokenRows = await stranger.locator("tr[data-patient]").count();
  result.wrongTokenStatus = await stranger.textContent("#status");
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
