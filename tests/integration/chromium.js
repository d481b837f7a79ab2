// Debian's Chromium, headless, as every browser test and benchmark launches it:
// no sandbox (root in CI), no GPU, no QUIC, no background traffic, autoplay on.
const { chromium } = require('playwright-core');

function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--autoplay-policy=no-user-gesture-required'],
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Calls step() every 250 ms until it returns true or timeoutSeconds pass.
async function pollUntil(timeoutSeconds, step) {
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (Date.now() < deadline) {
    if (await step()) return true;
    await sleep(250);
  }
  return false;
}

// Launches Chromium, runs body(browser), records any exception in
// result.errors, closes the browser and prints result as one JSON line.
async function withChromium(result, body) {
  const browser = await launchChromium();
  try {
    await body(browser);
  } catch (e) {
    result.errors.push(String(e));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

module.exports = { launchChromium, pollUntil, sleep, withChromium };
