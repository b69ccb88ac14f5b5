// What jssip.html and sipjs.html share (loaded before the library): their parameters from
// the query string, events POSTed to the test as lines of text (in order), a log for failure
// reports (the console's too), and commands long-polled from the test (support/browser.rs
// serves all three).
'use strict';

const H = (() => {
  const params = new URLSearchParams(location.search);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const post = (path, text) =>
    fetch(path, { method: 'POST', body: text, headers: { 'Content-Type': 'text/plain' } })
      .catch(() => {});
  // One queue each, so that the test gets events (and log lines) in the order they happened.
  let events = Promise.resolve();
  let logs = Promise.resolve();

  /** Reports one event line (newlines in it written as `\n`). */
  function event(line) {
    const text = String(line).replace(/\r?\n/g, '\\n');
    console.log(`event: ${text}`);
    events = events.then(() => post('/event', text));
  }

  /** Adds to the log the test prints when it fails (SIP traces, warnings). */
  function log(...args) {
    const text = args.map((a) => (typeof a === 'string' ? a : String(a))).join(' ');
    logs = logs.then(() => post('/log', `${new Date().toISOString()} ${text}`));
  }

  /** Long-polls `GET /command` forever, handing each line to `handle` (`ping` answered
   *  here with `pong`); a command that throws is reported as `command-failed`. */
  async function commands(handle) {
    for (;;) {
      try {
        const r = await fetch('/command', { cache: 'no-store' });
        if (r.status === 200) {
          const line = (await r.text()).trim();
          if (line === 'ping' || line.startsWith('ping ')) {
            event(`pong${line.slice(4)}`);
          } else {
            Promise.resolve()
              .then(() => handle(line))
              .catch((e) => event(`command-failed ${line.split(' ')[0]} ${e}`));
          }
        } else if (r.status !== 204) {
          await sleep(1000);
        }
      } catch (e) {
        await sleep(1000); // the test's server is going away
      }
    }
  }

  /** The media permission (the test's Chromium grants it with a fake device) asked for at
   *  once, so that Chromium shows its host candidates' addresses rather than mDNS names. */
  async function media() {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      stream.getTracks().forEach((t) => t.stop());
      log('getUserMedia: ok');
    } catch (e) {
      event(`error getUserMedia: ${e}`);
    }
  }

  /** `stats IN OUT ENERGY SECONDS`: the audio RTP packets `pc` received and sent, and the
   *  total energy and duration of the audio it played out (their ratio's root: the RMS
   *  level, 0–1, over any interval). */
  async function stats(pc) {
    let [inbound, outbound, energy, seconds] = [0, 0, 0, 0];
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        inbound += r.packetsReceived || 0;
        energy += r.totalAudioEnergy || 0;
        seconds += r.totalSamplesDuration || 0;
      }
      if (r.type === 'outbound-rtp' && r.kind === 'audio') outbound += r.packetsSent || 0;
    });
    return `stats ${inbound} ${outbound} ${energy} ${seconds}`;
  }

  /** Plays the audio `pc` receives, as a page that is a phone does (Chromium measures the
   *  level of what it plays out): its tracks now, or when they come. */
  function play(pc) {
    const start = (stream) => {
      const audio = new Audio();
      audio.srcObject = stream;
      audio.play().catch((err) => log(`play: ${err}`));
    };
    const tracks = pc.getReceivers().map((r) => r.track).filter((t) => t && t.kind === 'audio');
    if (tracks.length) {
      start(new MediaStream(tracks));
    } else {
      pc.addEventListener('track', (e) => start(e.streams[0] || new MediaStream([e.track])));
    }
  }

  // The console (JsSIP logs there with `debug`: '%c' styles dropped) goes to the log too.
  for (const level of ['debug', 'log', 'info', 'warn', 'error']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      original(...args);
      log(level, ...args.filter((a) => !/^color:/.test(a)).map((a) => String(a).replace(/%c/g, '')));
    };
  }
  window.addEventListener('error', (e) => event(`error ${e.message}`));
  window.addEventListener('unhandledrejection', (e) => event(`error ${e.reason}`));
  return { params, event, log, commands, media, sleep, stats, play };
})();
