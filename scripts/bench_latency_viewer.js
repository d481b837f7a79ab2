// (b) of scripts/bench-latency.sh: hls.js in headless Chromium (Debian's, flags
// launched by tests/integration/chromium.js) plays PLAYLIST_URL in SESSIONS fresh
// page loads. hls.js picks its distance from the live edge when it starts and
// does not move it by much afterwards (it only speeds up with more than 1 s
// buffered), so one start is one draw: the samples of every session are pooled.
// In each session, WARMUP_SECONDS after playback starts, it samples every
// 200 ms for SECONDS / SESSIONS:
//   - hls.latency (hls.js's own estimate: live edge + playlist age - currentTime);
//   - wall clock - the PROGRAM-DATE-TIME of the playing frame (hls.playingDate),
//     or, with CLOCK=name, - the fragment's creation time in ms taken from its
//     name (nginx-rtmp's hls_fragment_naming system, which writes no PDT);
// and counts stalls ('waiting' events). Prints one JSON object.
// usage: node bench_latency_viewer.js PLAYLIST_URL HLSJS_URL ll|llrate|std SECONDS WARMUP_SECONDS
//        SESSIONS [pdt|name]
const { launchChromium } = require('../tests/integration/chromium');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [url, hlsjs, mode, seconds, warmup, sessions, clock] = [process.argv[2], process.argv[3],
  process.argv[4], +process.argv[5], +process.argv[6], +process.argv[7], process.argv[8] || 'pdt'];

// The player's settings: ll as on onair's viewer page; llrate also lets hls.js
// play up to 1.5x to reach its target latency (it never does by default);
// std is standard HLS (3 target durations from the edge).
const HLS_CONFIG = {
  ll: { lowLatencyMode: true },
  llrate: { lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 },
  std: { lowLatencyMode: false },
};
if (!HLS_CONFIG[mode]) throw new Error('mode: ll, llrate or std');

function quantiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return [med, s[Math.min(s.length - 1, Math.round(0.95 * (s.length - 1)))]];
}

const page = `<!doctype html><meta charset="utf-8"><title>latency bench</title>
<video id="v" muted autoplay playsinline></video>
<script src="${hlsjs}"></script>
<script>
window.bench = { samples: [], stalls: 0, fatal: [], nonfatal: 0, measuring: false,
                 playing: false, frag: null };
const v = document.getElementById('v');
const hls = window.hls = new Hls(${JSON.stringify(HLS_CONFIG[mode])});
hls.on(Hls.Events.ERROR, (e, d) => {
  if (d.fatal) bench.fatal.push(d.type + '/' + d.details); else bench.nonfatal++;
});
hls.on(Hls.Events.FRAG_CHANGED, (e, d) => { bench.frag = d.frag; });
hls.on(Hls.Events.MANIFEST_PARSED, () => { v.play().catch(() => {}); });
v.addEventListener('playing', () => { bench.playing = true; });
v.addEventListener('waiting', () => { if (bench.measuring) bench.stalls++; });
hls.loadSource(${JSON.stringify(url)});
hls.attachMedia(v);
setInterval(() => {
  if (!bench.measuring || v.paused || v.readyState < 3) return;
  const now = Date.now();
  let wall = null;
  if (${JSON.stringify(clock)} === 'pdt') {
    const d = hls.playingDate;
    if (d) wall = (now - d.getTime()) / 1000;
  } else if (bench.frag) {
    const m = /(\\d{13})\\.ts/.exec(bench.frag.url);
    if (m) wall = (now - (+m[1] + (v.currentTime - bench.frag.start) * 1000)) / 1000;
  }
  bench.samples.push([hls.latency, wall]);
}, 200);
</script>`;

(async () => {
  const result = { url, mode, clock };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'onair-latency-'));
  const file = path.join(dir, 'page.html');
  fs.writeFileSync(file, page);
  const browser = await launchChromium();
  try {
    const p = await browser.newPage();
    const errors = [];
    p.on('pageerror', (e) => errors.push(String(e)));
    const b = { samples: [], stalls: 0, nonfatal: 0, startup: [], per_session: [] };
    for (let i = 0; i < sessions; i++) {
      await p.goto('file://' + file, { waitUntil: 'load' });
      const started = Date.now();
      while (!(await p.evaluate(() => window.bench && window.bench.playing))) {
        const f = await p.evaluate(() => (window.bench ? window.bench.fatal : ['no page']));
        if (f.length || errors.length) throw new Error('before playing: ' + f.concat(errors));
        if (Date.now() - started > 30000) throw new Error('not playing after 30 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      b.startup.push((Date.now() - started) / 1000);
      await new Promise((r) => setTimeout(r, warmup * 1000));
      await p.evaluate(() => { window.bench.measuring = true; });
      await new Promise((r) => setTimeout(r, (seconds / sessions) * 1000));
      const s = await p.evaluate(() => {
        window.bench.measuring = false;
        return { samples: window.bench.samples, stalls: window.bench.stalls,
                 fatal: window.bench.fatal, nonfatal: window.bench.nonfatal, version: Hls.version };
      });
      if (s.fatal.length || errors.length) throw new Error('fatal: ' + s.fatal.concat(errors));
      const mine = s.samples.map((x) => x[0]);
      b.per_session.push(mine.length ? +quantiles(mine)[0].toFixed(2) : null);
      b.samples.push(...s.samples);
      b.stalls += s.stalls;
      b.nonfatal += s.nonfatal;
      b.version = s.version;
    }
    const lat = b.samples.map((s) => s[0]);
    const wall = b.samples.map((s) => s[1]).filter((x) => x !== null);
    if (lat.length < seconds * 2) throw new Error('only ' + lat.length + ' samples while playing');
    Object.assign(result, {
      hlsjs: b.version, samples: lat.length, stalls: b.stalls, nonfatal: b.nonfatal,
      sessions, startup_s: quantiles(b.startup), per_session: b.per_session,
      latency: quantiles(lat), wall: wall.length > lat.length / 2 ? quantiles(wall) : null,
      wall_from: clock,
    });
  } catch (e) {
    result.error = String(e.message || e);
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result));
  process.exit(result.error ? 1 : 0);
})();
