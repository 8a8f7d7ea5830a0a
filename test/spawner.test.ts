import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawner } from '../src/eval/spawner.js';
import { tempDir } from './helpers/cli.js';

/** Running (a zombie, killed but not yet reaped, is not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe('the Nix process helper', () => {
  it('passes on standard error whole, the exit code, the environment, and a kill', async () => {
    let err = '';
    const run = spawner().run('sh', ['-c', 'for i in 1 2 3; do echo "line $i $FODDER_T" >&2; done; exit 3'], { FODDER_T: 'env-ok' }, (d) => {
      err += d;
    });
    expect(await run.done).toEqual({ exitCode: 3, signal: null });
    expect(err).toBe('line 1 env-ok\nline 2 env-ok\nline 3 env-ok\n');

    const long = spawner().run('sleep', ['30'], {});
    expect(await until(() => long.pid !== undefined, 5000)).toBe(true);
    long.kill();
    expect(await long.done).toEqual({ exitCode: null, signal: 'SIGKILL' });
    expect(alive(long.pid!)).toBe(false);

    await expect(spawner().run('/no/such/command', [], {}).done).rejects.toThrow(/ENOENT/);
  });

  it('exits, and kills what it started, when the process that owns it is killed with SIGKILL', async () => {
    // the crawl's process, stood in for by a script that starts `sleep` through the helper
    const script = join(tempDir(), 'owner.mjs');
    const built = pathToFileURL(resolve('dist/src/eval/spawner.js')).href;
    writeFileSync(
      script,
      `import { spawner } from ${JSON.stringify(built)};
      const run = spawner().run('sleep', ['60'], {});
      const t = setInterval(() => { if (run.pid) { console.log(JSON.stringify({ sleep: run.pid })); clearInterval(t); } }, 20);
      await run.done;`,
    );
    const owner = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((res) => owner.stdout.once('data', (d: Buffer) => res(d.toString())));
    const sleepPid = (JSON.parse(line) as { sleep: number }).sleep;
    expect(alive(sleepPid)).toBe(true);
    owner.kill('SIGKILL');
    expect(await until(() => !alive(sleepPid), 5000)).toBe(true);
  });
});
