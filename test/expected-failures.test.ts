/**
 * Expected failures end a command with one line, `fodder: error [CODE]: …`, naming the file,
 * and a non-zero exit; never a stack trace. A stack trace is for a bug, with a request to report it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { failureOf, failureText } from '../src/cli/failure.js';
import { FodderError } from '../src/errors.js';
import { CLI, FIXTURE, fodder, tempDir } from './helpers/cli.js';
import { createTestCrawl } from './helpers/fetch-db.js';
import { startHttp, type Running } from './helpers/servers.js';

/** Runs a command without blocking this process (its own test servers must keep answering). */
function run(cmd: string, args: string[], options: { closeStdout?: boolean } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    // the reading end closed before the command writes a byte: its first write fails with EPIPE
    if (options.closeStdout) child.stdout.destroy();
    else
      child.stdout.on('data', (d) => {
        stdout += String(d);
      });
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** One line on stderr, with its code, and nothing that looks like a stack trace. */
function expectOneLine(stderr: string, code: string): void {
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(new RegExp(`^fodder: error \\[${code}\\]: `));
  expect(stderr).not.toMatch(/\n\s+at |internal error|unexpected error/);
}

/** Overwrites every page of a SQLite file but the first (its header and schema) with random bytes. */
function damagePages(file: string): void {
  const fd = openSync(file, 'r+');
  const header = Buffer.alloc(100);
  readSync(fd, header, 0, 100, 0);
  const raw = header.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const size = fstatSync(fd).size;
  expect(size / pageSize).toBeGreaterThan(3);
  for (let off = pageSize; off < size; off += pageSize) writeSync(fd, randomBytes(pageSize), 0, pageSize, off);
  closeSync(fd);
}

describe('a database whose header is intact but whose pages are damaged', () => {
  const dir = tempDir();
  const db = join(dir, 'damaged.db');

  beforeAll(() => {
    const c = createTestCrawl(db);
    for (let i = 0; i < 300; i++)
      c.addDrv(`pkg-${i}`, [c.addFod({ name: `src-${i}.tar.gz`, urls: [`http://127.0.0.1:9/src-${i}`], content: `s${i}` })], `pkg${i}`);
    c.close();
    damagePages(db);
  });

  test('every command says DB_CORRUPT in one line naming the file, and exits 1', async () => {
    const commands = [
      ['attrs'],
      ['attrs', '--json'],
      ['fods'],
      ['sources', 'pkg1'],
      ['report', '--no-save'],
      ['fetch', '--mirror', join(dir, 'mirror'), '--no-progress'],
      ['verify', '--mirror', join(dir, 'mirror')],
      ['crawl', '--nixpkgs', FIXTURE, '--system', 'x86_64-linux', '--variant', 'default', '--attr', 'hello', '--no-progress'],
    ];
    mkdirSync(join(dir, 'mirror', 'tarballs'), { recursive: true });
    for (const args of commands) {
      const r = await fodder([...args, '--db', db]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expectOneLine(r.stderr, 'DB_CORRUPT');
      expect(r.stderr).toContain(`database ${db}`);
    }
  }, 120_000);
});

describe('standard output closed early', () => {
  const dir = tempDir();
  const db = join(dir, 'big.db');

  beforeAll(() => {
    // well over a pipe's 64 KiB of output for each listing
    const c = createTestCrawl(db);
    for (let i = 0; i < 1500; i++) {
      c.addDrv(
        `pkg-${i}`,
        [c.addFod({ name: `source-number-${i}.tar.gz`, urls: [`http://127.0.0.1:9/source-number-${i}.tar.gz`], content: `s${i}` })],
        `packages.pkg${i}`,
      );
    }
    c.close();
  });

  test('`fodder attrs | head -1` (and fods, with or without --json) print one line and end quietly, as killed by SIGPIPE', async () => {
    for (const args of [['attrs'], ['attrs', '--json'], ['fods'], ['fods', '--json']]) {
      const r = await run('bash', ['-c', `"${process.execPath}" "${CLI}" ${args.join(' ')} --db "${db}" | head -1; echo "status=\${PIPESTATUS[0]}"`]);
      expect(r.stdout.split('\n')).toHaveLength(3); // the line, the status, the end
      expect(r.stdout, args.join(' ')).toMatch(/status=(0|141)\n$/);
      expect(r.stderr, args.join(' ')).toBe('');
    }
    // which of those two it is depends on how much the pipe took; a closed pipe decides it
    for (const args of [['attrs'], ['attrs', '--json'], ['fods'], ['fods', '--json']]) {
      const r = await run(process.execPath, [CLI, ...args, '--db', db], { closeStdout: true });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(141);
      expect(r.stderr).toBe('');
    }
  }, 60_000);
});

describe('the mirror becoming read-only during a fetch', () => {
  const dir = tempDir();
  const db = join(dir, 'fodder.db');
  const mirror = join(dir, 'mirror');
  const requested = join(dir, 'requested');
  const released = join(dir, 'released');
  let server: Running;

  beforeAll(async () => {
    const bodies = [randomBytes(1 << 20), randomBytes(1 << 20)];
    // answers only once the test has made the mirror read-only: the fetch is then between writes
    server = await startHttp(async (req, res) => {
      writeFileSync(requested, '');
      while (!existsSync(released)) await new Promise((r) => setTimeout(r, 20));
      const body = bodies[Number(req.url?.slice(1))];
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const c = createTestCrawl(db);
    bodies.forEach((content, i) => c.addFod({ name: `source-${i}`, urls: [server.url(`/${i}`)], content }));
    c.close();
    mkdirSync(mirror);
  });
  afterAll(async () => {
    await server?.close();
  });

  test('stops with the first write that failed, named in one line, and exit 1 (a tmpfs remounted read-only as root of a namespace)', async () => {
    // `unshare -rm`: root of a new user and mount namespace, for root and non-root alike
    const r = await run('unshare', [
      '-rm',
      'sh',
      '-c',
      `
      mount -t tmpfs tmpfs ${mirror} || exit 99
      "${process.execPath}" "${CLI}" fetch --db ${db} --mirror ${mirror} --no-progress & pid=$!
      while [ ! -e ${requested} ]; do sleep 0.02; done
      mount -o remount,ro ${mirror} || echo "remount failed"
      touch ${released}
      wait $pid; echo "exit=$?"`,
    ]);
    expect(r.stdout).not.toContain('remount failed');
    expect(r.stdout).toMatch(/exit=1\n/);
    expectOneLine(r.stderr, 'MIRROR_UNWRITABLE');
    expect(r.stderr).toMatch(
      new RegExp(`writing source-\\d into ${mirror}/tmp\\): EROFS: read-only file system, open '${mirror}/tmp/sha256-[0-9a-f]+/download'`),
    );
  }, 60_000);
});

describe('other files that cannot be written', () => {
  test('report --out and keygen --out name the path, in one line, exit 1', async () => {
    const dir = tempDir();
    const db = join(dir, 'fodder.db');
    createTestCrawl(db).close();
    writeFileSync(join(dir, 'a-file'), '');
    const report = await fodder(['report', '--db', db, '--out', join(dir, 'a-file', 'report.txt')]);
    expect(report.code, report.stderr).toBe(1);
    expectOneLine(report.stderr, 'IO_NOT_FOUND');
    expect(report.stderr).toContain(join(dir, 'a-file', 'report.txt'));
    const keygen = await fodder(['keygen', 'k1', '--out', join(dir, 'a-file', 'keys')]);
    expect(keygen.code, keygen.stderr).toBe(1);
    expectOneLine(keygen.stderr, 'IO_[A-Z_]+');
    expect(keygen.stderr).toContain(join(dir, 'a-file'));
  });
});

describe('an empty option value', () => {
  test('is a usage error naming the option, never the current directory, the default or "all"', async () => {
    const dir = tempDir();
    const db = join(dir, 'fodder.db');
    const c = createTestCrawl(db);
    c.addDrv('pkg', [c.addFod({ name: 'src.tar.gz', urls: ['http://127.0.0.1:9/src.tar.gz'], content: 's' })], 'pkg');
    c.close();
    for (const args of [
      ['attrs', '--status', ''],
      ['fods', '--kind', ''],
      ['fetch', '--mirror', ''],
      ['report', '--out', ''],
      ['crawl', '--store', ''],
    ]) {
      const r = await fodder([...args, '--db', db], { cwd: dir });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toBe(`fodder: error [USAGE]: ${args[1]}: an empty value; leave the option out for its default`);
    }
    expect(readdirSync(dir)).toEqual(['fodder.db']);
  });
});

describe('a bug', () => {
  test('prints its stack and asks to report it; an expected failure does not', () => {
    const bug = failureOf(new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(bug).toMatchObject({ bug: true, exitCode: 1 });
    expect(failureText(bug)).toMatch(/^fodder: internal error: TypeError: Cannot read properties[^\n]*\n\s+at /);
    expect(failureText(bug)).toMatch(/this is a bug in fodder; please report it/);
    const expected = failureOf(Object.assign(new Error("EACCES: permission denied, open '/x/y'"), { code: 'EACCES', syscall: 'open', path: '/x/y' }));
    expect(failureText(expected)).toBe('fodder: error [IO_PERMISSION]: /x/y: permission denied (open, EACCES)\n');
    expect(failureOf(new FodderError('USAGE', 'bad')).exitCode).toBe(2);
  });
});
