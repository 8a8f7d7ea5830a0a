import type { FetchProgress } from '../fetch/progress.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(secs: number): string {
  if (!Number.isFinite(secs)) return '?';
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Progress on stderr: one line redrawn in place on a terminal (files and bytes done, rate,
 * failures, ETA), plain lines every few seconds plus one per failed source otherwise.
 */
export function createFetchProgress(interactive: boolean, write: (s: string) => void = (s) => process.stderr.write(s)): FetchProgress {
  const t0 = Date.now();
  let queued = 0,
    done = 0,
    failed = 0,
    bytes = 0,
    expected = 0;
  let lastDraw = 0,
    lastPlain = Date.now();
  // rate over a sliding window of (time, bytes) samples
  const samples: [number, number][] = [[t0, 0]];
  const rate = () => {
    const now = Date.now();
    while (samples.length > 2 && now - samples[0][0] > 10_000) samples.shift();
    const [t, b] = samples[0];
    return now > t ? ((bytes - b) * 1000) / (now - t) : 0;
  };
  const line = () => {
    const secs = (Date.now() - t0) / 1000;
    const filesRate = secs > 0 ? done / secs : 0;
    // the longer of: the files left at the file rate so far, the announced bytes left at the byte rate
    const byFiles = done > 0 ? (queued - done) / filesRate : 0;
    const r = rate();
    const byBytes = expected > bytes && r > 0 ? (expected - bytes) / r : 0;
    const eta = queued === done ? '0s' : done > 0 || byBytes > 0 ? formatDuration(Math.max(byFiles, byBytes)) : '?';
    return `fetch: ${done}/${queued} files  ${formatBytes(bytes)}  ${formatBytes(rate())}/s  ${failed} failed  ETA ${eta}`;
  };
  const draw = (force = false) => {
    const now = Date.now();
    if (interactive) {
      if (force || now - lastDraw > 200) {
        lastDraw = now;
        samples.push([now, bytes]);
        write(`\r\x1b[K${line()}`);
      }
      return;
    }
    if (force || now - lastPlain > 5000) {
      lastPlain = now;
      samples.push([now, bytes]);
      write(line() + '\n');
    }
  };
  const clear = () => (interactive ? '\r\x1b[K' : '');
  return {
    start(info) {
      queued = info.queued;
      write(`fetch run ${info.run} (crawl ${info.crawl}): ${info.queued} sources to fetch, ${info.skipped} skipped\n`);
      draw(true);
    },
    bytes(delta) {
      bytes += delta;
      draw();
    },
    expect(n) {
      expected += n;
    },
    done(info) {
      done++;
      if (info.verdict !== 'ok') {
        failed++;
        write(`${clear()}${info.verdict}: ${info.name}: ${info.message ?? ''}\n`);
      }
      draw();
    },
    finish() {
      draw(true);
      if (interactive) write('\n');
    },
  };
}
