// Plays an LL-HLS stream through an edge in headless Chromium (Debian's) with
// hls.js in low-latency mode, from a page served under the edge's own origin,
// and reports as one JSON line: seconds played, parts hls.js loaded (LL-HLS
// parts, not whole segments), its live latency, the HTTP version the page's
// requests used (h2 over TLS), fatal errors.
// usage: node edge_play.js EDGE_BASE_URL PLAYLIST_PATH MIN_SECONDS TIMEOUT_SECONDS
const { pollUntil, withChromium } = require('./chromium');

const PAGE = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline></video>
<script src="/static/hls.min.js"></script>
<script>
  window.st = { parts: 0, frags: 0, fatal: null, ll: false };
  const v = document.getElementById('v');
  const hls = new Hls({ lowLatencyMode: true });
  window.hls = hls;
  st.ll = hls.config.lowLatencyMode;
  hls.on(Hls.Events.FRAG_LOADED, (e, d) => { if (d.part) st.parts++; else st.frags++; });
  hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) st.fatal = d.type + ': ' + d.details; });
  hls.loadSource(location.hash.slice(1));
  hls.attachMedia(v);
  v.play().catch(() => {});
</script></body></html>`;

(async () => {
  const [base, playlist, minSeconds, timeoutSeconds] =
    [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
  const result = { base, played: 0, parts: 0, latency: null, protocols: [], errors: [] };
  await withChromium(result, async (browser) => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true }); // self-signed test cert
    const page = await context.newPage();
    page.on('pageerror', (e) => result.errors.push(String(e)));
    await page.route(base + '/edge-test.html', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: PAGE }));
    await page.goto(base + '/edge-test.html#' + playlist, { waitUntil: 'load' });
    let t0 = null; // playback starts wherever hls.js tunes in: count from there
    await pollUntil(timeoutSeconds, async () => {
      const s = await page.evaluate(() => ({
        t: document.getElementById('v').currentTime,
        parts: st.parts, frags: st.frags, fatal: st.fatal, ll: st.ll,
        latency: window.hls ? hls.latency : null,
        protocols: [...new Set(performance.getEntriesByType('resource')
          .filter((e) => e.name.includes('.m3u8') || e.name.includes('.m4s'))
          .map((e) => e.nextHopProtocol))],
      }));
      if (t0 === null && s.t > 0) t0 = s.t;
      Object.assign(result, { played: t0 === null ? 0 : s.t - t0, parts: s.parts, frags: s.frags, ll: s.ll,
                              latency: s.latency, protocols: s.protocols });
      if (s.fatal) result.errors.push('hls.js fatal: ' + s.fatal);
      return result.played >= minSeconds || s.fatal;
    });
  });
})();
