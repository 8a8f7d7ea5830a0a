/**
 * `--missing`'s sizes: what a fetch recorded for any .drv of a lacking output, the FOD's own or
 * any of `drvPaths` (a source of a target evaluated now, found through several .drv files).
 */
import { describe, expect, test } from 'vitest';
import type { Fod } from '../src/graph/types.js';
import type { MirrorView } from '../src/mirror/holdings.js';
import { missingFrom } from '../src/query/missing.js';
import { flatFod } from './helpers/fetch-db.js';

const empty: MirrorView = { where: 'nowhere', holds: async () => ({ held: false }) };
const sha = (c: string) => c.repeat(64);

describe('sizes of what a mirror lacks', () => {
  test("a source's size is found through any of its .drv files", async () => {
    const a = { ...flatFod('a.tar.gz', sha('a')), drvPaths: ['/nix/store/x-a.drv', '/nix/store/y-a.drv'] };
    const b: Fod = flatFod('b.tar.gz', sha('b'));
    const answer = await missingFrom([a, b], empty, new Map([['/nix/store/y-a.drv', 1234]]));
    expect(answer.missing.map((m) => [m.fod.name, m.size])).toEqual([
      ['a.tar.gz', 1234],
      ['b.tar.gz', null],
    ]);
    expect(answer).toMatchObject({ lack: 2, unknownSize: 1, bytesToMove: 1234 });
  });
});
