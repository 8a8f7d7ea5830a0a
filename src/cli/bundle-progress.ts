import { formatBytes, formatDuration } from './fetch-progress.js';

/** Progress of `bundle create` or `bundle import`, fed an object at a time. */
export interface BundleProgress {
  /** more objects to go (a volume's index read) */
  expect(objects: number, bytes: number): void;
  /** one object done (copied, imported, found present or refused) */
  object(bytes: number): void;
  /** the last line, and the end of the redrawn one */
  finish(): void;
}

/**
 * Progress on stderr, as fetch's: one line redrawn in place on a terminal (at most five times a
 * second), a plain line every five seconds otherwise. `verb` begins the line ("bundle create").
 */
export function createBundleProgress(
  verb: string,
  interactive: boolean,
  write: (s: string) => void = (s) => process.stderr.write(s),
  now: () => number = Date.now,
): BundleProgress {
  const t0 = now();
  let objects = 0,
    bytes = 0,
    doneObjects = 0,
    doneBytes = 0,
    last = t0;
  const line = () => {
    const secs = (now() - t0) / 1000;
    const rate = secs > 0 ? doneBytes / secs : 0;
    const share = bytes > 0 ? ` (${Math.floor((doneBytes / bytes) * 100)}%)` : '';
    const eta = doneBytes >= bytes ? '0s' : rate > 0 ? formatDuration((bytes - doneBytes) / rate) : '?';
    return `${verb}: ${doneObjects}/${objects} objects  ${formatBytes(doneBytes)} of ${formatBytes(bytes)}${share}  ${formatBytes(rate)}/s  ETA ${eta}`;
  };
  const draw = (force = false) => {
    const t = now();
    if (!force && t - last < (interactive ? 200 : 5000)) return;
    last = t;
    write(interactive ? `\r\x1b[K${line()}` : `${line()}\n`);
  };
  return {
    expect(n, b) {
      objects += n;
      bytes += b;
    },
    object(b) {
      doneObjects++;
      doneBytes += b;
      draw();
    },
    finish() {
      // a plain log gets the last line only when it got any (a short run says nothing more)
      if (interactive) {
        draw(true);
        write('\n');
      } else if (now() - t0 >= 5000) draw(true);
    },
  };
}
