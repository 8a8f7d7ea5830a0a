/**
 * `npm run bench:fetch`: fodder fetch against curl on loopback, served by nginx.
 *
 *   1. one 1 GiB file: wall time of `fodder fetch` vs `curl -o FILE URL && sha256sum FILE`
 *      (target: ratio <= 1.1), and fodder's peak RSS during it (target < 200 MB);
 *   2. 5,000 small files: files per second of `fodder fetch` vs `xargs -P8 curl` on the same
 *      list (target: >= 1.5x).
 * Both as fodder runs by default, with the hashed mirror alone (`fetch.cache.flat: false`, what
 * the targets were set for), and with `fetch.cache.flat: true`, publishing every file in the
 * binary cache too (a second, fsynced copy of each file as a NAR).
 *
 * Runs the built CLI (dist/): `npm run bench:fetch` builds first. Each measurement is taken ROUNDS times,
 * alternating, and the median is reported. BENCH_BIG_MB and BENCH_SMALL_FILES shrink it.
 */
import { execa, execaSync } from 'execa';
import { randomBytes, createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCrawl } from '../test/helpers/fetch-db.js';
import { repoRoot, startNginx } from '../test/helpers/servers.js';
import { median } from './timed.js';

const root = repoRoot();
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const BIG = Number(process.env.BENCH_BIG_MB ?? 1024) * 2 ** 20;
const SMALL = Number(process.env.BENCH_SMALL_FILES ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

interface Timed {
  ms: number;
  peakRssMb: number;
  code: number | null;
  stdout: string;
}

/** Runs a command; samples the child's VmHWM (peak RSS) from /proc while it runs. */
function timed(cmd: string, args: string[], cwd = root): Promise<Timed> {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = execa(cmd, args, { cwd, stdin: 'ignore', stdout: 'pipe', stderr: 'inherit', env: { CI: '1' }, buffer: false, reject: false });
    let peak = 0;
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
    });
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        /* exited */
      }
    };
    const timer = setInterval(sample, 5);
    child.on('error', fail);
    child.on('exit', (code) => {
      clearInterval(timer);
      done({ ms: Number(process.hrtime.bigint() - t0) / 1e6, peakRssMb: peak, code, stdout });
    });
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-bench-'));
  const www = join(dir, 'www');
  mkdirSync(join(www, 'small'), { recursive: true });
  process.stderr.write(`generating ${BIG >> 20} MiB and ${SMALL} small files in ${dir}\n`);
  const bigHash = createHash('sha256');
  const fd = openSync(join(www, 'big.bin'), 'w');
  for (let left = BIG; left > 0; left -= 1 << 24) {
    const chunk = randomBytes(Math.min(left, 1 << 24));
    bigHash.update(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const nginx = await startNginx(www, 'keepalive_requests 100000;');
  const bigDb = join(dir, 'big.db');
  const big = createTestCrawl(bigDb);
  big.addFod({ name: 'big.bin', urls: [nginx.url('/big.bin')], hex: bigHash.digest('hex') });
  big.close();
  const smallDb = join(dir, 'small.db');
  const small = createTestCrawl(smallDb);
  const urls: string[] = [];
  small.db.transaction(() => {
    for (let i = 0; i < SMALL; i++) {
      const body = randomBytes(2048 + ((i * 7919) % 30_000));
      writeFileSync(join(www, 'small', `f${i}.tar.gz`), body);
      const url = nginx.url(`/small/f${i}.tar.gz`);
      urls.push(url);
      small.addFod({ name: `f${i}.tar.gz`, urls: [url], content: body });
    }
  })();
  small.close();
  writeFileSync(join(dir, 'urls.txt'), urls.join('\n') + '\n');
  execaSync('sync');

  const withFlat = join(dir, 'flat-cache.yaml');
  writeFileSync(withFlat, 'fetch:\n  cache:\n    flat: true\n');
  const modes = [
    { name: 'hashed mirror', extra: [] as string[] },
    { name: '+ binary cache', extra: ['--config', withFlat] },
  ];
  const fodderFetch = (db: string, mirror: string, extra: string[] = []) =>
    timed(process.execPath, [cli, 'fetch', '--db', db, '--mirror', mirror, '--no-progress', '--json', ...extra]);
  const fresh = (p: string) => {
    rmSync(p, { recursive: true, force: true });
    mkdirSync(p, { recursive: true });
  };

  const curlBig: number[] = [],
    curlSmall: number[] = [];
  const fodderBig = modes.map(() => [] as number[]),
    fodderSmall = modes.map(() => [] as number[]),
    rss = modes.map(() => [] as number[]);
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round}/${ROUNDS}\n`);
    const out = join(dir, 'curl-big');
    rmSync(out, { force: true });
    const c = await timed('bash', ['-c', `curl -sS -o ${out} ${nginx.url('/big.bin')} && sha256sum ${out} >/dev/null`]);
    if (c.code !== 0) throw new Error('curl failed');
    curlBig.push(c.ms);
    rmSync(out, { force: true });

    for (const [i, mode] of modes.entries()) {
      const m = join(dir, 'mirror-big');
      fresh(m);
      execaSync('sync');
      const f = await fodderFetch(bigDb, m, mode.extra);
      if (f.code !== 0 || JSON.parse(f.stdout).mirrored !== 1) throw new Error(`fodder fetch (big) failed: ${f.stdout}`);
      fodderBig[i].push(f.ms);
      rss[i].push(f.peakRssMb);
      rmSync(m, { recursive: true, force: true });
    }

    const sd = join(dir, 'curl-small');
    fresh(sd);
    execaSync('sync');
    const cs = await timed('bash', ['-c', `cd ${sd} && xargs -P8 -n1 curl -sS -O < ${join(dir, 'urls.txt')}`]);
    if (cs.code !== 0) throw new Error('xargs curl failed');
    curlSmall.push(cs.ms);
    rmSync(sd, { recursive: true, force: true });

    for (const [i, mode] of modes.entries()) {
      const ms = join(dir, 'mirror-small');
      fresh(ms);
      // a fresh database each run too: the runs would otherwise skip what is mirrored
      const db = join(dir, `small-${round}-${i}.db`);
      writeFileSync(db, readFileSync(smallDb));
      execaSync('sync');
      const fs = await fodderFetch(db, ms, ['--concurrency', '8', '--per-host', '8', ...mode.extra]);
      const s = JSON.parse(fs.stdout);
      if (fs.code !== 0 || s.mirrored !== SMALL) throw new Error(`fodder fetch (small) failed: ${fs.stdout}`);
      fodderSmall[i].push(fs.ms);
      rmSync(ms, { recursive: true, force: true });
    }
  }
  await nginx.close();

  const curlRate = SMALL / (median(curlSmall) / 1000);
  const rows = [['measure', 'fodder', 'baseline', 'result', 'target']];
  for (const [i, mode] of modes.entries()) {
    const fodderRate = SMALL / (median(fodderSmall[i]) / 1000);
    rows.push(
      [
        `${BIG >> 20} MiB file, wall time (${mode.name})`,
        `${(median(fodderBig[i]) / 1000).toFixed(2)} s`,
        `${(median(curlBig) / 1000).toFixed(2)} s (curl + sha256sum)`,
        `ratio ${(median(fodderBig[i]) / median(curlBig)).toFixed(2)}`,
        '<= 1.10',
      ],
      [
        `${SMALL} small files (${mode.name})`,
        `${fodderRate.toFixed(0)} files/s`,
        `${curlRate.toFixed(0)} files/s (xargs -P8 curl)`,
        `${(fodderRate / curlRate).toFixed(2)}x`,
        '>= 1.5x',
      ],
      [`peak RSS, ${BIG >> 20} MiB fetch (${mode.name})`, `${median(rss[i]).toFixed(0)} MB`, '', '', '< 200 MB'],
    );
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n') + '\n');
  const secs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(' ');
  process.stdout.write(
    `(median of ${ROUNDS} rounds; all rounds: curl big ${secs(curlBig)} s, curl small ${secs(curlSmall)} s; ` +
      modes
        .map((m, i) => `${m.name}: big ${secs(fodderBig[i])} s, small ${secs(fodderSmall[i])} s, rss ${rss[i].map((x) => x.toFixed(0)).join(' ')} MB`)
        .join('; ') +
      ')\n',
  );
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
