// The latency and throughput test of the client page against a real sockrelay (sequential,
// pipelined, stopped, against a target that does not echo, cut by a dying relay), and the time
// from navigation to an interactive page on loopback (reported, not judged).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startRelay, launchBrowser, screenshotOf, ROOT } from "./lib.mjs";

let relay;
let browser;
let page;

before(async () => {
  relay = await startRelay();
  browser = await launchBrowser();
  page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

async function openClient(url = relay.url) {
  await page.goto(url);
  await page.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
}

async function run({ count, size, pipelined = false }) {
  await page.getByLabel("Messages").fill(String(count));
  await page.getByLabel("Bytes each").fill(String(size));
  await page.getByLabel("Pipelined").setChecked(pipelined);
  await page.getByRole("button", { name: "Run" }).click();
}

/** The summary as numbers: `{ progress, p50, p99, max, mean, rate }` (ms, messages/s). */
async function summary() {
  const text = async (id) => page.locator(`#sum-${id}`).textContent();
  const ms = async (id) => {
    const value = await text(id);
    assert.match(value, /^\d+(\.\d+)? ms$/, `${id}: ${value}`);
    return parseFloat(value);
  };
  return {
    progress: await text("progress"),
    p50: await ms("p50"),
    p99: await ms("p99"),
    max: await ms("max"),
    mean: await ms("mean"),
    rate: Number(await text("rate")),
    throughput: await text("throughput"),
  };
}

const points = () =>
  page.locator("#measure-plot polyline.series").evaluate((line) => line.getAttribute("points").trim().split(/\s+/).length);

test("one message at a time: every round trip timed, plotted and summarised", async () => {
  await openClient();
  const logged = await page.locator("#log li").count();
  await run({ count: 200, size: 64 });
  await page.locator("#measure-status", { hasText: /^Done: 200 round trips in [\d.]+ s\.$/ }).waitFor({ timeout: 60_000 });
  await page.waitForTimeout(200); // the last render
  const s = await summary();
  assert.equal(s.progress, "200 of 200");
  assert.ok(0 < s.p50 && s.p50 <= s.p99 && s.p99 <= s.max, JSON.stringify(s));
  assert.ok(s.rate > 0, JSON.stringify(s));
  assert.match(s.throughput, /^[\d.]+ (B|KiB|MiB)\/s$/);
  assert.equal(await points(), 200);
  assert.equal(await page.locator("#measure-plot circle.dot").count(), 0, "dots only for few points");
  assert.equal(await page.locator("#measure-plot line.mark").count(), 2, "p50 and p99 marked");
  assert.match(await page.locator("#measure-plot").getAttribute("aria-label"), /^Round-trip time of 200 messages over [\d.]+ s: p50 /);
  // The test's messages stay out of the log: a start line and a summary line only.
  assert.equal(await page.locator("#log li").count(), logged + 2);
  await page.locator("#log li.info .data", { hasText: /^Latency test, 200 × 64 B, one at a time: p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms; \d+ messages\/s/ }).waitFor();
  assert.equal(await page.locator("#send").isEnabled(), true, "sending works again");
  await screenshotOf(page.locator("#measure"), "client-measure-sequential");
  console.log(`sequential 200 × 64 B: ${JSON.stringify(s)}`);
});

test("the plot is live: it grows during a run, then holds every round trip", async () => {
  // One at a time, 256 KiB each: a few seconds on loopback, so many renders (at most about
  // fifteen a second) land while it runs. 300 stays under the plot's width in pixels, where
  // every round trip is a point of its own.
  const count = 300;
  await openClient();
  await page.evaluate(() => {
    // The plot's point count and the summary's "K of N", read in one go (the client draws
    // both in the same render), and whether the test is still running (Stop shown).
    window.plotSnapshot = () => {
      const line = document.querySelector("#measure-plot polyline.series");
      const progress = document.getElementById("sum-progress").textContent;
      return {
        points: line ? line.getAttribute("points").trim().split(/\s+/).length : 0,
        completed: parseInt(progress, 10),
        progress,
        running: !document.getElementById("measure-stop").hidden,
      };
    };
    // Every redraw of the plot, as the page saw it.
    window.plotHistory = [];
    new MutationObserver(() => window.plotHistory.push(window.plotSnapshot()))
      .observe(document.getElementById("measure-plot"), { childList: true });
  });
  await run({ count, size: 262144 });

  // Two samples while it runs: some points, not all, as many as the round trips counted so
  // far, then more. Taken in the page as it redraws (the first redraw with points, then the
  // next that adds some), so no delay on the way to the test can let the run end in between.
  const { first, second } = await page.evaluate(
    () =>
      new Promise((resolve) => {
        let first = null;
        const done = (second) => {
          observer.disconnect();
          clearTimeout(timer);
          resolve({ first: first ?? second, second });
        };
        const check = () => {
          const now = window.plotSnapshot();
          if (!now.running) done(now);
          else if (!first && now.points > 0) first = now;
          else if (first && now.points > first.points) done(now);
        };
        const observer = new MutationObserver(check);
        observer.observe(document.getElementById("measure-plot"), { childList: true });
        const timer = setTimeout(() => done(window.plotSnapshot()), 30_000);
        check();
      }),
  );
  const inRun = (s) => s.running && s.completed < count && s.progress === `${s.completed} of ${count}`;
  for (const [name, s] of [["first", first], ["second", second]]) {
    assert.ok(inRun(s), `still running at the ${name} sample: ${JSON.stringify(s)}`);
    assert.ok(s.points > 0 && s.points < count, `${name} sample: ${JSON.stringify(s)}`);
    assert.equal(s.points, s.completed, `a point for each round trip so far: ${JSON.stringify(s)}`);
  }
  assert.ok(second.points > first.points, `grows: ${JSON.stringify({ first, second })}`);

  // The end: every round trip a point, and the summary.
  await page.locator("#measure-status", { hasText: new RegExp(`^Done: ${count} round trips in [\\d.]+ s\\.$`) }).waitFor({ timeout: 120_000 });
  await page.waitForFunction((count) => document.getElementById("sum-progress").textContent === `${count} of ${count}`, count);
  await page.waitForTimeout(200); // the last render
  assert.equal(await points(), count);
  const s = await summary();
  assert.ok(0 < s.p50 && s.p50 <= s.p99 && s.p99 <= s.max, JSON.stringify(s));
  assert.ok(s.rate > 0, JSON.stringify(s));
  assert.equal(await page.locator("#measure-plot line.mark").count(), 2, "p50 and p99 marked");

  // What the page drew along the way: several partial plots, never shrinking, ending complete.
  const history = await page.evaluate(() => window.plotHistory);
  const partial = new Set(history.filter((h) => h.points > 0 && h.points < count).map((h) => h.points));
  assert.ok(partial.size >= 2, `partial plots drawn during the run: ${[...partial]}`);
  for (let i = 1; i < history.length; i++) {
    assert.ok(history[i].points >= history[i - 1].points, `the plot shrank: ${JSON.stringify(history.slice(i - 1, i + 1))}`);
  }
  assert.equal(history.at(-1).points, count);
  console.log(`live plot, ${count} × 256 KiB: ${history.length} redraws, samples at ${first.points} and ${second.points} points; ${JSON.stringify(s)}`);
});

test("pipelined: many messages in flight, summarised the same way", async () => {
  await openClient();
  await run({ count: 3000, size: 512, pipelined: true });
  await page.locator("#measure-status", { hasText: /^Done: 3000 round trips/ }).waitFor({ timeout: 60_000 });
  await page.waitForTimeout(200);
  const s = await summary();
  assert.equal(s.progress, "3000 of 3000");
  assert.ok(s.p50 <= s.p99 && s.p99 <= s.max);
  assert.ok((await points()) <= 2 * 1280, "more points than pixels are summarised per column");
  await page.locator("#log li.info .data", { hasText: /^Latency test, 3000 × 512 B, pipelined: / }).waitFor();
  await screenshotOf(page.locator("#measure"), "client-measure-pipelined");
  console.log(`pipelined 3000 × 512 B: ${JSON.stringify(s)}`);
});

test("Stop ends a test early: sends stop, the echoes in flight are counted", async () => {
  await openClient();
  await run({ count: 100000, size: 1024, pipelined: true });
  await page.locator("#measure-stop").waitFor();
  assert.equal(await page.locator("#send").isDisabled(), true, "no typed sends during a test");
  await page.waitForTimeout(300);
  await page.getByRole("button", { name: "Stop" }).click();
  await page.locator("#measure-status", { hasText: /^Done: \d+ round trips in [\d.]+ s \(stopped after \d+ of 100000\)\.$/ }).waitFor({ timeout: 20_000 });
  assert.equal(await page.locator("#measure-stop").isHidden(), true);
  assert.equal(await page.locator("#measure-run").isEnabled(), true);
  // Nothing of the test leaks into the log afterwards, and the connection is fine.
  const logged = await page.locator("#log li").count();
  await page.locator("#message").fill("still here");
  await page.locator("#message").press("Enter");
  await page.locator("#log li.received .data", { hasText: "still here" }).waitFor();
  assert.equal(await page.locator("#log li").count(), logged + 2);
});

test("a target that does not echo stops the test with the reason", async () => {
  await openClient();
  await page.locator("#target").selectOption("ack");
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await page.locator("#status", { hasText: /^Connected to ack/ }).waitFor();
  await run({ count: 10, size: 16 });
  await page.locator("#measure-status", { hasText: "Stopped: the target does not echo" }).waitFor({ timeout: 10_000 });
  assert.equal(
    await page.locator("#measure-status").textContent(),
    "Stopped: the target does not echo: byte 0 of message 1 differs from what was sent (measure against an echo target)",
  );
  await page.locator("#log li.error .data", { hasText: "Latency test stopped: the target does not echo" }).waitFor();
  assert.equal(await page.locator("#measure-run").isEnabled(), true);
  await screenshotOf(page.locator("#measure"), "client-measure-not-echo");
});

test("the relay dying during a test stops it, keeps its results, and the page stays usable", async () => {
  const doomed = await startRelay();
  try {
    await openClient(doomed.url);
    await run({ count: 100000, size: 256 });
    await page.waitForFunction(() => parseInt(document.getElementById("sum-progress").textContent) > 20);
    await doomed.kill();
    await page.locator("#measure-status", { hasText: "Stopped: The connection to the relay was lost (code 1006)" }).waitFor({ timeout: 10_000 });
    assert.match(await page.locator("#sum-progress").textContent(), /^\d+ of 100000$/);
    assert.equal(await page.locator("#measure-run").isDisabled(), true, "no connection to measure");
    assert.equal(await page.locator("#measure-stop").isHidden(), true);
    await page.locator("#status[data-state=closed]").waitFor();
    await screenshotOf(page.locator("#measure"), "client-measure-relay-died");
  } finally {
    await doomed.kill();
  }
});

test("time from navigation to an interactive page on loopback (reported)", async () => {
  // Cold: a new browser profile, nothing cached. Warm: reloads of the same page.
  const cold = await launchBrowser();
  const samples = [];
  try {
    const coldPage = await cold.newPage();
    samples.push({ load: "cold", ...(await timeLoad(coldPage)) });
    for (let i = 0; i < 5; i++) samples.push({ load: "warm", ...(await timeLoad(coldPage)) });
  } finally {
    await cold.close();
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const warm = samples.filter((s) => s.load === "warm");
  const report = {
    relay: "target/debug/sockrelay on 127.0.0.1",
    cold: samples[0],
    warmMedian: {
      domContentLoaded: median(warm.map((s) => s.domContentLoaded)),
      interactive: median(warm.map((s) => s.interactive)),
      connected: median(warm.map((s) => s.connected)),
    },
    samples,
  };
  mkdirSync(join(ROOT, "target"), { recursive: true });
  writeFileSync(join(ROOT, "target", "client-time-to-interactive.json"), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`time to interactive (ms since navigation start): ${JSON.stringify({ cold: report.cold, warmMedian: report.warmMedian })}`);
  assert.ok(report.cold.interactive > 0);
});

/**
 * Loads the client and returns milliseconds from the navigation's start to DOMContentLoaded,
 * to the module's `sockrelay-ready` mark (every control wired: the page is interactive) and
 * to `sockrelay-open` (connected to echo).
 */
async function timeLoad(p) {
  await p.goto(relay.url);
  await p.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  return p.evaluate(() => {
    const mark = (name) => performance.getEntriesByName(name)[0]?.startTime;
    const [navigation] = performance.getEntriesByType("navigation");
    return {
      domContentLoaded: Math.round(navigation.domContentLoadedEventEnd * 10) / 10,
      interactive: Math.round(mark("sockrelay-ready") * 10) / 10,
      connected: Math.round(mark("sockrelay-open") * 10) / 10,
    };
  });
}
