// Drives onair's front page and viewer page in headless Chromium (Debian's) at
// a phone-sized viewport (390x844) and reports what it saw as JSON lines on
// stdout (the last line is the result; earlier lines are progress events the
// calling test may act on).
//
//   node browser_pages.js front URL EXPECT SHOT
//     EXPECT "empty": waits for <body data-state="empty">; otherwise a stream
//     name, waits for data-state="live" and its card. Saves a screenshot to
//     SHOT ("-" = none).
//   node browser_pages.js viewer URL PLAY_SECONDS SHOT CYCLES TIMEOUT
//     Waits until the video has advanced PLAY_SECONDS while the page says
//     "live", saves a screenshot, prints {"event":"played"}. Then, CYCLES
//     times: waits for the page to leave "live" (the test stops or pauses the
//     publisher: {"event":"down","state":...}, screenshot SHOT-STATE.png) and to
//     come back to "live" with the video advancing 3 s ({"event":"resumed"}).
//     Errors are tagged [0] (first play) or [N] (cycle N).
const { launchChromium, sleep } = require('./chromium');

const emit = (o) => console.log(JSON.stringify(o));

async function launch(result) {
  const browser = await launchChromium();
  // ignoreHTTPSErrors: integration-https serves the page with a test CA's certificate.
  const page = await browser.newPage({ viewport: { width: 390, height: 844 },
                                       deviceScaleFactor: 2, ignoreHTTPSErrors: true });
  const ph = () => (result.phase === undefined ? '' : '[' + result.phase + '] ');
  page.on('console', (m) => {
    result.console.push(ph() + m.type() + ': ' + m.text());
    if (m.type() === 'error') result.errors.push(ph() + 'console: ' + m.text());
  });
  page.on('pageerror', (e) => result.errors.push(ph() + 'pageerror: ' + String(e)));
  page.on('requestfailed', (r) => {
    // A request the page itself aborted (hls.js on teardown) is not an error.
    const f = r.failure();
    if (!f || !/ERR_ABORTED/.test(f.errorText))
      result.errors.push(ph() + 'request failed: ' + r.url() + ' ' + (f && f.errorText));
  });
  page.on('response', (r) => {
    if (r.status() >= 400) result.errors.push(ph() + 'HTTP ' + r.status() + ' ' + r.url());
  });
  return { browser, page };
}

async function front(url, expect, shot) {
  const result = { mode: 'front', url, errors: [], console: [] };
  const { browser, page } = await launch(result);
  try {
    await page.goto(url, { waitUntil: 'load' });
    const want = expect === 'empty' ? 'empty' : 'live';
    const deadline = Date.now() + 20000;
    let s;
    while (Date.now() < deadline) {
      s = await page.evaluate((name) => ({
        state: document.body.dataset.state,
        streams: Array.from(document.querySelectorAll('#streams li')).map((li) => ({
          name: li.dataset.stream,
          href: li.querySelector('a').getAttribute('href'),
          text: li.innerText.replace(/\s+/g, ' ').trim(),
          thumb: (function (img) {
            return img ? { src: img.getAttribute('src'), width: img.naturalWidth,
                           shown: img.complete && !img.classList.contains('missing') } : null;
          })(li.querySelector('.thumb img')),
        })),
        found: name ? !!document.querySelector('li[data-stream="' + name + '"]') : false,
        emptyVisible: !document.getElementById('empty').hidden,
        helpOpen: document.getElementById('publish').open,
        server: document.getElementById('rtmp-server').textContent,
        ffmpeg: document.getElementById('ffmpeg-line').textContent,
        status: document.getElementById('status').textContent,
      }), expect === 'empty' ? '' : expect);
      // a live stream's card also waits for its thumbnail (a 503 until the first is made)
      const card = s.streams.find((c) => c.name === expect);
      if (s.state === want && (want === 'empty' || (card && card.thumb && card.thumb.shown))) break;
      await sleep(250);
    }
    Object.assign(result, s);
    await sleep(300); // let the last paint settle
    if (shot !== '-') await page.screenshot({ path: shot });
  } catch (e) {
    result.errors.push(String(e));
  } finally {
    await browser.close();
  }
  emit(result);
}

async function viewerState(page) {
  return page.evaluate(() => {
    const v = document.querySelector('video');
    const o = window.onair || {};
    return {
      state: document.body.dataset.state,
      t: v.currentTime,
      paused: v.paused,
      size: v.videoWidth + 'x' + v.videoHeight,
      player: o.player,
      lowLatencyMode: o.hls ? o.hls.config.lowLatencyMode : null,
      latency: o.latency,
      latencyText: document.getElementById('latency-box').hidden ? null
        : document.getElementById('latency').textContent,
      status: document.getElementById('status').textContent,
      badge: document.getElementById('badge').textContent,
      poster: v.getAttribute('poster'),
      fatal: (o.errors || []).filter((e) => e.fatal).map((e) => e.details),
      hlsErrors: (o.errors || []).map((e) => e.details + (e.fatal ? ' (fatal)' : '')),
      history: (o.history || []).map((h) => h.state + (h.detail ? ': ' + h.detail : '')),
    };
  });
}

// Waits until the page is "live" and its video has advanced SECONDS since
// this call first saw it live; returns the last state (or null at DEADLINE).
async function playFor(page, seconds, deadline, onSample) {
  let start = null, last = null;
  while (Date.now() < deadline) {
    const s = await viewerState(page);
    if (onSample) onSample(s);
    if (s.state === 'live' && !s.paused) {
      if (start === null || s.t < last) start = s.t; // a new player restarts the clock
      last = s.t;
      if (s.t - start >= seconds) return s;
    } else {
      start = null;
    }
    await sleep(250);
  }
  return null;
}

async function viewer(url, playSeconds, shot, cycles, timeoutSeconds) {
  const result = { mode: 'viewer', url, errors: [], console: [], played: false,
                   downs: [], resumed: 0, seen: [] };
  const { browser, page } = await launch(result);
  const deadline = Date.now() + timeoutSeconds * 1000;
  const note = (s) => {
    if (result.seen[result.seen.length - 1] !== s.state) result.seen.push(s.state);
  };
  // Errors are tagged with the phase they happened in: 0 = first play, N = cycle N.
  const tag = (phase) => { result.phase = phase; };
  tag(0);
  try {
    await page.goto(url, { waitUntil: 'load' });
    let s = await playFor(page, playSeconds, deadline, note);
    if (!s) throw new Error('did not play ' + playSeconds + ' s: ' +
                            JSON.stringify(await viewerState(page)));
    result.played = true;
    for (let i = 0; i < 20 && s.latencyText === null; i++) { // the first estimate may lag
      await sleep(250);
      s = await viewerState(page);
    }
    Object.assign(result, { size: s.size, player: s.player, lowLatencyMode: s.lowLatencyMode,
                            latency: s.latency, latencyText: s.latencyText, badge: s.badge,
                            poster: s.poster,
                            fatalWhilePlaying: s.fatal });
    if (shot !== '-') await page.screenshot({ path: shot });
    emit({ event: 'played', state: s.state, latency: s.latency });
    for (let cycle = 1; cycle <= cycles; cycle++) {
      tag(cycle);
      while (Date.now() < deadline) {
        s = await viewerState(page);
        note(s);
        if (s.state !== 'live') break;
        await sleep(200);
      }
      result.downs.push(s.state);
      emit({ event: 'down', cycle, state: s.state });
      if (shot !== '-') {
        await sleep(500); // the overlay fades in over the last frame
        await page.screenshot({ path: shot.replace(/\.png$/, '') + '-' + s.state + '.png' });
      }
      s = await playFor(page, 3, deadline, note);
      if (!s) throw new Error('did not resume: ' + JSON.stringify(await viewerState(page)));
      result.resumed = cycle;
      emit({ event: 'resumed', cycle });
    }
    s = await viewerState(page);
    Object.assign(result, { history: s.history, hlsErrors: s.hlsErrors });
  } catch (e) {
    result.errors.push('[' + result.phase + '] ' + String(e));
    try {
      s = await viewerState(page);
      Object.assign(result, { history: s.history, hlsErrors: s.hlsErrors });
    } catch (e2) { /* closed */ }
  } finally {
    await browser.close();
  }
  emit(result);
}

(async () => {
  const [mode, url, a, b, c, d] = process.argv.slice(2);
  if (mode === 'front') await front(url, a, b);
  else if (mode === 'viewer') await viewer(url, +a, b, +c, +d);
  else { console.error('usage: see the top of ' + __filename); process.exit(2); }
})();
