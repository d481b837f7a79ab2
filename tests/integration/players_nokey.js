// Plays one stream in one player for integration-players-nokey
// (test_players_nokey.py) in headless Chromium and prints one JSON line.
//   node players_nokey.js PAGE_URL SECONDS
// PAGE_URL is players_nokey.html?player=...&src=...&wait=1: once the page is
// loaded, prints {"event":"ready"} and starts the player when a line arrives on
// stdin (the test publishes meanwhile, so that the player starts at a chosen
// point of the stream, whatever the browser's start-up takes); waits up to 30 s for the
// first presented frame, then SECONDS more, sampling the page every second:
// currentTime, decoded/dropped frames (getVideoPlaybackQuality), presented
// frames (requestVideoFrameCallback), media events, player errors.
// To look into a player: NK_CONSOLE=FILE appends every console message to FILE
// (add &debug=1 to the page URL for hls.js's debug log).
const { withChromium, pollUntil, sleep } = require('./chromium');

const [url, seconds] = process.argv.slice(2);
const result = { url, errors: [], console: [], samples: [] };

const sample = (page) => page.evaluate(() => {
  const v = document.getElementById('v');
  const q = v.getVideoPlaybackQuality();
  const s = v.seekable;
  return {
    time: v.currentTime, paused: v.paused, readyState: v.readyState,
    width: v.videoWidth, height: v.videoHeight,
    decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames,
    presented: window.t.presented, firstMediaTime: window.t.firstMediaTime,
    lastMediaTime: window.t.lastMediaTime,
    seekable: s.length ? [s.start(0), s.end(s.length - 1)] : null,
    events: Object.assign({}, window.t.events),
    fatal: window.t.fatal.slice(), playerErrors: window.t.errors.slice(),
    version: window.t.version, canPlayHls: window.t.canPlayHls,
  };
});

withChromium(result, async (browser) => {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (process.env.NK_CONSOLE) require('fs').appendFileSync(process.env.NK_CONSOLE, m.text() + '\n');
    if (m.type() === 'error' || m.type() === 'warning')
      result.console.push(m.type() + ': ' + m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => result.errors.push('pageerror: ' + String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) result.errors.push('HTTP ' + r.status() + ' ' + r.url());
  });
  await page.goto(url, { waitUntil: 'load' });
  console.log(JSON.stringify({ event: 'ready' }));
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  await page.evaluate(() => window.go());
  let s = await sample(page);
  result.started = await pollUntil(30, async () => {
    s = await sample(page);
    return s.presented > 0 || s.fatal.length > 0;
  }) && s.presented > 0;
  result.first = s;
  if (result.started) {
    const end = Date.now() + Number(seconds) * 1000;
    while (Date.now() < end && !s.fatal.length) {
      await sleep(1000);
      s = await sample(page);
      result.samples.push([Math.round(s.time * 100) / 100, s.decoded, s.presented]);
    }
  }
  result.last = s;
});
