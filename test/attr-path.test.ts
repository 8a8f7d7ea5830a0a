import { describe, expect, it } from 'vitest';
import { formatAttrPath, parseAttrPath } from '../src/eval/attr-path.js';

describe('attribute paths', () => {
  it('round-trips names that need quoting', () => {
    const paths = [['a'], ['python3Packages', 'requests'], ['a', 'b.c', 'd'], ['x', 'with space'], ['q', 'has"quote']];
    for (const p of paths) expect(parseAttrPath(formatAttrPath(p))).toEqual(p);
    expect(formatAttrPath(['a', 'b.c'])).toBe('a."b.c"');
  });
  it('rejects malformed paths with a message naming them', () => {
    expect(() => parseAttrPath('a..b')).toThrow(/empty name in attribute path "a..b"/);
    expect(() => parseAttrPath('a.')).toThrow(/ends with "."/);
    expect(() => parseAttrPath('a."b')).toThrow(/unterminated quote/);
    expect(() => parseAttrPath('')).toThrow(/empty attribute path/);
  });
});
