// Opens onair's player page in headless Chromium (Debian's) and reports, as
// one JSON line, whether hls.js played the stream: the video's currentTime
// must advance past MIN_SECONDS with no fatal hls.js error.
// usage: node browser_play.js PAGE_URL MIN_SECONDS TIMEOUT_SECONDS
const { pollUntil, withChromium } = require('./chromium');

(async () => {
  const [url, minSeconds, timeoutSeconds] = [process.argv[2], +process.argv[3], +process.argv[4]];
  const result = { url, played: 0, hlsjs: false, errors: [], console: [] };
  await withChromium(result, async (browser) => {
    const page = await browser.newPage();
    page.on('console', (m) => result.console.push(m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => result.errors.push(String(e)));
    await page.goto(url, { waitUntil: 'load' });
    await pollUntil(timeoutSeconds, async () => {
      const s = await page.evaluate(() => {
        const v = document.querySelector('video');
        return {
          t: v ? v.currentTime : -1,
          err: v && v.error ? v.error.message || String(v.error.code) : null,
          hlsjs: typeof window.Hls === 'function' && window.Hls.isSupported(),
          w: v ? v.videoWidth : 0,
          h: v ? v.videoHeight : 0,
        };
      });
      result.played = s.t;
      result.hlsjs = s.hlsjs;
      result.size = s.w + 'x' + s.h;
      if (s.err) result.errors.push('video element: ' + s.err);
      return s.t >= minSeconds || s.err;
    });
  });
})();
