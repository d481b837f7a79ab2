// The viewer page with recording on (test_record_browser.py): while live it
// offers "Rewind to the start", which plays the DVR playlist from the event's
// start; once the stream has ended it offers the latest replay (MP4).
// Usage: node browser_record.js VIEWER_URL SHOT_PREFIX. Prints one JSON line.
const { withChromium, pollUntil, sleep } = require('./chromium');

const [url, shot] = process.argv.slice(2);
const result = { errors: [], console: [] };

const state = (page) => page.evaluate(() => {
  const v = document.querySelector('video');
  const s = v.seekable;
  return {
    state: document.body.dataset.state,
    rewind: !document.getElementById('rewind').hidden,
    replay: !document.getElementById('replay').hidden,
    replayHref: document.getElementById('replay-latest').getAttribute('href'),
    time: v.currentTime,
    start: s.length ? s.start(0) : null,
    end: s.length ? s.end(s.length - 1) : null,
    fatal: (window.onair.errors || []).filter((e) => e.fatal).length,
  };
});

withChromium(result, async (browser) => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  page.on('console', (m) => { if (m.type() === 'error') result.console.push(m.text()); });
  await page.goto(url);
  result.rewindOffered = await pollUntil(30, async () => {
    const s = await state(page);
    return s.state === 'live' && s.rewind;
  });
  if (!result.rewindOffered) {
    result.errors.push('no rewind while live: ' + JSON.stringify(await state(page)));
    return;
  }
  await sleep(3000); // the event grows: the start falls behind the live edge
  await Promise.all([page.waitForNavigation(), page.click('#rewind')]);
  result.dvrUrl = page.url();
  let first = null;
  result.dvrPlaying = await pollUntil(20, async () => {
    const s = await state(page);
    if (s.state === 'live' && s.time > 0.5 && s.end !== null) {
      first = s;
      return true;
    }
    return false;
  });
  result.dvrSample = first;
  await page.screenshot({ path: shot + '-rewind.png' });
  // The stream ends (the publisher stops): offline, with the latest replay offered.
  result.replayOffered = await pollUntil(60, async () => {
    const s = await state(page);
    result.last = s;
    return s.state === 'offline' && s.replay;
  });
  await page.screenshot({ path: shot + '-replay.png' });
});
