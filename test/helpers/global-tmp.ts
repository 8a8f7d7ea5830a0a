/**
 * vitest global set-up: every test file, and every program it starts (Nix, nginx, git, the
 * fixture's builders), makes its temporary files under one directory of this run, removed when
 * the run ends. Test files need not clean up after themselves one by one, and repeated runs do
 * not fill /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-tests-'));
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
