import { describe, expect, it } from 'vitest';
import { createBundleProgress } from '../src/cli/bundle-progress.js';

/** the start of a line redrawn in place: carriage return, erase the line */
const REDRAW = '\r\x1b[K';

/** A progress whose clock the test moves, and what it wrote. */
function progressAt(interactive: boolean) {
  let t = 1_000_000;
  const out: string[] = [];
  const p = createBundleProgress(
    'bundle import',
    interactive,
    (s) => out.push(s),
    () => t,
  );
  return { p, out, advance: (ms: number) => (t += ms) };
}

describe('the progress of bundle create and import', () => {
  it('in a plain log: a line every five seconds with objects, bytes, share, rate and ETA, and the last one', () => {
    const { p, out, advance } = progressAt(false);
    p.expect(4, 4 << 20);
    p.object(1 << 20);
    expect(out).toEqual([]); // nothing within the first five seconds
    advance(5000);
    p.object(1 << 20);
    expect(out).toEqual(['bundle import: 2/4 objects  2.0 MiB of 4.0 MiB (50%)  409.6 KiB/s  ETA 5s\n']);
    advance(1000);
    p.object(1 << 20);
    expect(out).toHaveLength(1); // not again within five seconds
    p.expect(1, 1 << 20); // a second volume's index
    advance(1000);
    p.object(1 << 20);
    p.object(1 << 20);
    p.finish();
    expect(out.at(-1)).toBe('bundle import: 5/5 objects  5.0 MiB of 5.0 MiB (100%)  731.4 KiB/s  ETA 0s\n');
  });

  it('says nothing more for a run shorter than five seconds in a plain log', () => {
    const { p, out, advance } = progressAt(false);
    p.expect(1, 10);
    advance(4000);
    p.object(10);
    p.finish();
    expect(out).toEqual([]);
  });

  it('on a terminal: one line redrawn in place, at most five times a second, ended by a newline', () => {
    const { p, out, advance } = progressAt(true);
    p.expect(3, 3000);
    advance(300);
    p.object(1000);
    p.object(1000); // within 200 ms of the last draw: not drawn
    expect(out).toHaveLength(1);
    expect(out[0].startsWith(`${REDRAW}bundle import: 1/3 objects  1000 B of 2.9 KiB (33%)`)).toBe(true);
    advance(300);
    p.object(1000);
    p.finish();
    expect(out.at(-2)!.startsWith(`${REDRAW}bundle import: 3/3 objects `) && out.at(-2)!.endsWith('ETA 0s')).toBe(true);
    expect(out.at(-1)).toBe('\n');
  });
});
