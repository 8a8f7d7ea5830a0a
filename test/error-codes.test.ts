import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/errors.js';

const cliDoc = readFileSync(join(import.meta.dirname, '..', 'docs', 'cli.md'), 'utf8');

describe('error codes', () => {
  it('names every ErrorCode in docs/cli.md', () => {
    const missing = Object.values(ErrorCode).filter((code) => !cliDoc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it('gives every ErrorCode one distinct string', () => {
    expect(new Set(Object.values(ErrorCode)).size).toBe(Object.values(ErrorCode).length);
  });
});
