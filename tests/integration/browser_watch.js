// Opens a player page in headless Chromium and samples the <video> element for
// SECONDS: prints one JSON object with the samples (wall clock in s, currentTime)
// and any page or media errors, so a test can see playback continue across an
// event it caused at a known wall-clock time. The page is never reloaded.
// usage: node browser_watch.js PAGE_URL SECONDS
const { sleep, withChromium } = require('./chromium');

const [url, seconds] = [process.argv[2], +process.argv[3]];
const result = { url, samples: [], errors: [], hlsjs: false, loads: 0 };

withChromium(result, async (browser) => {
  const page = await browser.newPage();
  page.on('pageerror', (e) => result.errors.push(String(e)));
  page.on('load', () => { result.loads += 1; });
  await page.goto(url, { waitUntil: 'load' });
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const s = await page.evaluate(() => {
      const v = document.querySelector('video');
      return {
        ct: v ? v.currentTime : -1,
        err: v && v.error ? v.error.message || String(v.error.code) : null,
        hlsjs: typeof window.Hls === 'function' && window.Hls.isSupported(),
        size: v ? v.videoWidth + 'x' + v.videoHeight : '',
      };
    });
    result.hlsjs = s.hlsjs;
    result.samples.push([Date.now() / 1000, s.ct, s.size]);
    if (s.err) { result.errors.push('video element: ' + s.err); break; }
    await sleep(250);
  }
});
