/**
 * Unpacking a downloaded archive the way nixpkgs' fetchzip does (stdenv's `unpackFile`: GNU tar
 * for `*.tar*`, `*.tgz`, `*.tbz2`, `*.tbz`, `xz -d | tar` for `*.tar.xz`, `*.tar.lzma`, `*.txz`,
 * unzip for `*.zip`; then the placement of the fetchzip version at hand, see `placeUnpacked`),
 * or as a recognised tar command does (`--strip-components`, `--anchored --exclude`,
 * `--keep-old-files`: TeX Live's fetcher), treating the archive as hostile input:
 *
 * - tar: fodder decompresses the archive itself and reads every header (unpack-tar.ts) before
 *   passing the bytes on to GNU tar, so a refused entry never reaches tar;
 * - zip: the central directory is read and judged before unzip runs, and unzip runs under a
 *   file size limit;
 * - the rules (unpack-policy.ts): no absolute names, no `..`, nothing through a symlink of the
 *   same archive, no hard link out of the tree, no device files or fifos, a cap on bytes and on
 *   entries; afterwards the tree is walked once more (no special files, sizes within the cap).
 *
 * Everything is written below the given work directory. Only the owner's executable bit
 * survives into a NAR, so permissions are normalised as the Nix store does: directories 0755,
 * files 0644 or 0755.
 */
import { createReadStream, existsSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { ErrorCode, FodderError } from '../errors.js';
import { startProcess, type StartedProcess } from '../process.js';
import { createTarScanner } from './unpack-tar.js';
import { readZipEntries } from './unpack-zip.js';
import { createEntryPolicy, DEFAULT_UNPACK_LIMITS, UnpackErrorCode, unpackError, type UnpackLimits } from './unpack-policy.js';
import type { FetchzipPlacement } from '../graph/fetchzip.js';
import { tarMemberName, type TarScriptShape } from '../graph/tar-script.js';

export { UnpackErrorCode, DEFAULT_UNPACK_LIMITS, type UnpackLimits } from './unpack-policy.js';

/** How stdenv's unpackFile handles a file of a given name. */
export type UnpackMethod =
  /** `tar xf FILE`: GNU tar picks the decompressor from the content */
  | { tool: 'tar' }
  /** `(xz -d < FILE; true) | tar xf -` */
  | { tool: 'xz-tar' }
  /** `unzip -qq FILE` */
  | { tool: 'unzip' };

/** The method nixpkgs' unpackFile picks for `fileName` (its unpackCmdHooks, in order), or null. */
export function unpackMethodFor(fileName: string): UnpackMethod | null {
  if (/\.(tar\.xz|tar\.lzma|txz)$/.test(fileName)) return { tool: 'xz-tar' };
  if (/\.tar$|\.tar\.|\.tgz$|\.tbz2$|\.tbz$/.test(fileName)) return { tool: 'tar' };
  if (/\.zip$/.test(fileName)) return { tool: 'unzip' };
  return null;
}

export interface UnpackOptions {
  limits?: UnpackLimits;
  signal?: AbortSignal;
  /** tar only: extract as this tar command does (--strip-components, --anchored --exclude, --keep-old-files) */
  tar?: TarScriptShape;
}

export interface UnpackResult {
  entries: number;
  bytes: number;
}

/**
 * Unpacks `archive` into `dest` (created; must not exist) with `method`. Throws a FodderError
 * with an UNPACK_* code; on any failure `dest` is removed.
 */
export async function unpackArchive(archive: string, dest: string, method: UnpackMethod, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const limits = opts.limits ?? DEFAULT_UNPACK_LIMITS;
  if (opts.tar && method.tool === 'unzip') throw unpackError(UnpackErrorCode.UNSUPPORTED, 'tar options for a zip archive', {});
  await mkdir(dest);
  try {
    if (method.tool === 'unzip') await unzipInto(archive, dest, limits, opts.signal);
    else await untarInto(archive, dest, method, limits, opts.signal, opts.tar);
    return await normaliseTree(dest, limits);
  } catch (e) {
    await rm(dest, { recursive: true, force: true });
    throw e;
  }
}

/** Today's fetchzip: `ls -A` must list one entry, which becomes `$out` (the whole directory without stripRoot). */
export function todaysPlacement(stripRoot: boolean): FetchzipPlacement {
  return { stripRoot, count: stripRoot ? 'all' : null, pick: 'all', dotglob: false, move: 'rename' };
}

/**
 * fetchzip's placement of the unpacked tree at `out`, as the version described by `placement`
 * does it (`true`/`false`: today's, with or without stripRoot). With stripRoot the single
 * top-level entry becomes `out` (a single file is put inside a new directory); without, the
 * whole unpack directory. Throws `UNPACK_STRIP_ROOT` where that version's script fails, and
 * `UNPACK_UNSUPPORTED` where its outcome depends on more than the archive (a symlink as the
 * single entry, a name `echo` would read as an option).
 */
export async function placeUnpacked(unpackDir: string, out: string, placement: FetchzipPlacement | boolean): Promise<void> {
  const p = typeof placement === 'boolean' ? todaysPlacement(placement) : placement;
  const names = await readdir(unpackDir, { encoding: 'buffer' });
  const globbed = (list: Buffer[]) => (p.dotglob ? list : list.filter((n) => n[0] !== DOT));
  if (!p.stripRoot) {
    if (p.move === 'rename') await rename(unpackDir, out);
    else await moveInto(unpackDir, globbed(names), out);
    await chmod(out, 0o755);
    return;
  }
  if (p.count !== null) {
    const counted = p.count === 'all' ? names : names.filter((n) => n[0] !== DOT);
    const lines = counted.reduce((n, name) => n + 1 + name.filter((b) => b === 0x0a).length, 0);
    if (lines !== 1) {
      const which = p.count === 'all' ? '' : ' not starting with a dot';
      throw unpackError(UnpackErrorCode.STRIP_ROOT, `stripRoot: the archive has ${lines} top-level entries${which}, fetchzip needs exactly one`, {
        topLevel: names.slice(0, 20).map(String),
      });
    }
  }
  const candidates = p.pick === 'all' ? names : globbed(names);
  if (candidates.length !== 1) {
    throw unpackError(UnpackErrorCode.STRIP_ROOT, `stripRoot: \`echo *\` names ${candidates.length} top-level entries, so fetchzip's mv fails`, {
      topLevel: names.slice(0, 20).map(String),
    });
  }
  const fn = candidates[0];
  if (fn.includes(0x0a) || (p.pick === 'glob' && /^-[neE]+$/.test(fn.toString('latin1')))) {
    throw unpackError(UnpackErrorCode.UNSUPPORTED, `stripRoot: the top-level name '${String(fn)}' is not passed through the script unchanged`, {
      entry: String(fn),
    });
  }
  const top = Buffer.concat([Buffer.from(unpackDir), SLASH, fn]);
  const st = await lstat(top);
  if (st.isSymbolicLink()) {
    throw unpackError(UnpackErrorCode.UNSUPPORTED, `stripRoot: the single top-level entry '${String(fn)}' is a symlink`, { entry: String(fn) });
  }
  if (st.isFile()) {
    await mkdir(out, 0o755);
    await rename(top, Buffer.concat([Buffer.from(out), SLASH, fn]));
  } else if (p.move === 'rename') {
    await rename(top, out);
  } else {
    const children = globbed(await readdir(top, { encoding: 'buffer' }));
    if (children.length === 0) {
      throw unpackError(
        UnpackErrorCode.STRIP_ROOT,
        `stripRoot: the top-level directory '${String(fn)}' is empty, so fetchzip's \`mv '${String(fn)}'/*\` fails`,
        { entry: String(fn) },
      );
    }
    await moveInto(top.toString(), children, out);
  }
  await chmod(out, 0o755);
  await rm(unpackDir, { recursive: true, force: true });
}

/** `mkdir $out; mv DIR/<names> $out/`: fails as mv does when the glob matched nothing. */
async function moveInto(dir: string, names: Buffer[], out: string): Promise<void> {
  if (names.length === 0) {
    throw unpackError(UnpackErrorCode.STRIP_ROOT, 'the unpacked archive is empty, so fetchzip\'s `mv "$unpackDir"/*` fails', {});
  }
  await mkdir(out, 0o755);
  for (const n of names) await rename(Buffer.concat([Buffer.from(dir), SLASH, n]), Buffer.concat([Buffer.from(out), SLASH, n]));
}

const DOT = 0x2e;

// ---------------------------------------------------------------- tar

/** The decompressor GNU tar would choose for these leading bytes; null for plain tar. */
function decompressorFor(magic: Buffer): { cmd: string; args: string[] } | null | 'unsupported' {
  const starts = (hex: string) => magic.subarray(0, hex.length / 2).equals(Buffer.from(hex, 'hex'));
  if (starts('1f8b') || starts('1f9d')) return { cmd: 'gzip', args: ['-dc'] };
  if (starts('425a68')) return { cmd: 'bzip2', args: ['-dc'] };
  if (starts('fd377a585a00')) return { cmd: 'xz', args: ['-dc'] };
  if (starts('28b52ffd')) return { cmd: 'zstd', args: ['-dc', '-q'] };
  if (starts('4c5a4950') || starts('894c5a4f')) return 'unsupported'; // lzip, lzop
  return null;
}

async function leadingBytes(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

type Child = StartedProcess;

function run(cmd: string, args: string[], opts: { cwd?: string; stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore'; env?: NodeJS.ProcessEnv }): Child {
  return startProcess(cmd, args, { ...opts, env: opts.env ?? { ...process.env, LC_ALL: 'C' }, stderrLimit: { max: 16384 } });
}

function kill(c: Child | null): void {
  c?.kill();
}

async function untarInto(
  archive: string,
  dest: string,
  method: UnpackMethod,
  limits: UnpackLimits,
  signal?: AbortSignal,
  shape?: TarScriptShape,
): Promise<void> {
  let decomp: { cmd: string; args: string[] } | null;
  if (method.tool === 'xz-tar') {
    decomp = { cmd: 'xz', args: ['-dc'] };
  } else {
    const d = decompressorFor(await leadingBytes(archive, 8));
    if (d === 'unsupported') throw unpackError(UnpackErrorCode.UNSUPPORTED, 'lzip/lzop compressed tar archives are not unpacked by fodder', {});
    decomp = d;
  }
  const policy = createEntryPolicy(limits);
  const scanner = createTarScanner(policy, shape ? (name) => strippedName(name, shape) : undefined);
  const tar = run(
    'tar',
    ['-x', '-f', '-', ...(shape ? tarShapeArgs(shape) : []), '--mode=+w', '--warning=no-timestamp', '--no-same-owner', '--no-same-permissions'],
    { cwd: dest, stdin: 'pipe', stdout: 'ignore' },
  );
  const dc = decomp ? run(decomp.cmd, [...decomp.args, '--', archive], { stdin: 'ignore', stdout: 'pipe' }) : null;
  let dcError: unknown = null;
  dc?.exit.catch((e: unknown) => {
    dcError = e;
  });
  const source: AsyncIterable<Buffer> = dc ? dc.stdout! : createReadStream(archive, { highWaterMark: 1 << 20 });
  const stdin = tar.stdin!;
  let tarGone = false;
  stdin.on('error', () => {
    tarGone = true;
  });
  const onAbort = () => {
    kill(tar);
    kill(dc);
  };
  signal?.addEventListener('abort', onAbort);
  try {
    for await (const chunk of source) {
      if (signal?.aborted) throw new FodderError(UnpackErrorCode.FAILED, 'unpacking aborted', {});
      const n = scanner.push(chunk); // throws before tar sees a refused header
      if (!tarGone && !stdin.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        await Promise.race([once(stdin, 'drain').catch(() => undefined), tar.exit]);
      }
      if (scanner.ended) break;
    }
    if (scanner.ended) {
      if (!tarGone) stdin.write(Buffer.alloc(512)); // the second zero block: tar ends where the scanner did
    } else {
      scanner.finish();
    }
    stdin.end();
    if (scanner.ended) kill(dc); // GNU tar stops reading here too
    const t = await tar.exit;
    if (t.code !== 0) {
      throw (
        localFailure(tar.stderr()) ??
        unpackError(UnpackErrorCode.FAILED, `tar failed (${t.code ?? t.signal}): ${tar.stderr() || 'no message'}`, { stderr: tar.stderr() })
      );
    }
    if (dc && !scanner.ended && method.tool !== 'xz-tar') {
      const d = await dc.exit;
      if (d.code !== 0) {
        throw unpackError(UnpackErrorCode.FAILED, `${decomp!.cmd} failed (${d.code ?? d.signal}): ${dc.stderr() || 'no message'}`, { stderr: dc.stderr() });
      }
    }
  } catch (e) {
    kill(tar);
    kill(dc);
    await tar.exit.catch(() => undefined);
    throw asUnpackError(dcError ?? e, dcError ? decomp!.cmd : 'tar');
  } finally {
    signal?.removeEventListener('abort', onAbort);
    kill(dc);
  }
}

/** The options that make GNU tar extract as the recognised tar command does. */
function tarShapeArgs(shape: TarScriptShape): string[] {
  return [
    ...(shape.stripComponents > 0 ? [`--strip-components=${shape.stripComponents}`] : []),
    ...(shape.exclude.length > 0 ? ['--anchored', ...shape.exclude.map((p) => `--exclude=${p}`)] : []),
    ...(shape.keepOldFiles ? ['--keep-old-files'] : []),
  ];
}

/** tarMemberName, refusing names whose stripping fodder would not be sure to get right. */
function strippedName(name: string, shape: TarScriptShape): string | null {
  if (shape.stripComponents > 0 && /(^|\/)\.{0,2}\/|(^|\/)\.\.?$/.test(name.replace(/\/+$/, '/'))) {
    throw unpackError(UnpackErrorCode.UNSUPPORTED, `tar member '${name}' has an empty, '.' or '..' component: --strip-components is not reproduced for it`, {
      entry: name,
    });
  }
  return tarMemberName(name, shape);
}

// ---------------------------------------------------------------- zip

async function unzipInto(archive: string, dest: string, limits: UnpackLimits, signal?: AbortSignal): Promise<void> {
  const entries = await readZipEntries(archive);
  const policy = createEntryPolicy(limits);
  for (const e of entries) {
    if (e.encrypted) throw unpackError(UnpackErrorCode.UNSUPPORTED, `zip entry '${e.name}' is encrypted`, { entry: e.name });
    if (e.name.includes('\\')) throw unpackError(UnpackErrorCode.UNSUPPORTED, `zip entry '${e.name}' has a backslash in its name`, { entry: e.name });
    policy.check(e);
  }
  // unzip prompts on a duplicate name; with no terminal (as in a Nix build) it keeps the first
  const args = ['-qq', archive];
  const limited = existsSync('/usr/bin/prlimit') || existsSync('/bin/prlimit');
  const unzip = limited
    ? run('prlimit', [`--fsize=${Math.max(limits.maxBytes, 1)}`, 'unzip', ...args], {
        cwd: dest,
        stdin: 'ignore',
        stdout: 'ignore',
        env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
      })
    : run('unzip', args, { cwd: dest, stdin: 'ignore', stdout: 'ignore', env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' } });
  const onAbort = () => kill(unzip);
  signal?.addEventListener('abort', onAbort);
  try {
    const r = await unzip.exit;
    if (r.signal === 'SIGXFSZ') throw unpackError(UnpackErrorCode.TOO_LARGE, `a zip entry unpacks past the cap of ${limits.maxBytes} bytes`, {});
    if (r.code !== 0)
      throw (
        localFailure(unzip.stderr()) ??
        unpackError(UnpackErrorCode.FAILED, `unzip failed (${r.code ?? r.signal}): ${unzip.stderr() || 'no message'}`, { stderr: unzip.stderr() })
      );
  } catch (e) {
    throw asUnpackError(e, 'unzip');
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------- after unpacking

/**
 * Walks the unpacked tree without following symlinks: refuses special files, checks the caps
 * and sets the permissions the Nix store would give (0755 directories, 0644/0755 files by the
 * owner's executable bit).
 */
export async function normaliseTree(root: string, limits: UnpackLimits): Promise<UnpackResult> {
  let entries = 0;
  let bytes = 0;
  const rootBuf = Buffer.from(root);
  const stack: Buffer[] = [rootBuf];
  const rel = (p: Buffer) => p.subarray(rootBuf.length + 1).toString();
  await chmod(rootBuf, 0o755);
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const name of await readdir(dir, { encoding: 'buffer' })) {
      const p = Buffer.concat([dir, SLASH, name]);
      const st = await lstat(p);
      if (++entries > limits.maxEntries) throw unpackError(UnpackErrorCode.TOO_LARGE, `more than ${limits.maxEntries} entries`, {});
      if (st.isDirectory()) {
        await chmod(p, 0o755);
        stack.push(p);
      } else if (st.isFile()) {
        bytes += st.size;
        if (bytes > limits.maxBytes) throw unpackError(UnpackErrorCode.TOO_LARGE, `unpacked size passes the cap of ${limits.maxBytes} bytes`, {});
        await chmod(p, st.mode & 0o100 ? 0o755 : 0o644);
      } else if (!st.isSymbolicLink()) {
        throw unpackError(UnpackErrorCode.UNSAFE, `'${rel(p)}' is a special file`, { entry: rel(p), rule: 'special' });
      }
    }
  }
  return { entries, bytes };
}

const SLASH = Buffer.from('/');

/** A failure of the local disk, which must stop the run rather than mark one source. */
function localFailure(stderr: string): FodderError | null {
  if (/No space left on device|Disk quota exceeded/.test(stderr)) {
    return new FodderError(ErrorCode.MIRROR_FULL, `no space left while unpacking: ${stderr.split('\n')[0]}`, {});
  }
  return null;
}

function asUnpackError(e: unknown, tool: string): FodderError {
  if (e instanceof FodderError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT' && err.syscall?.startsWith('spawn')) {
    return unpackError(UnpackErrorCode.UNSUPPORTED, `${err.path ?? tool} is not installed`, { tool });
  }
  return unpackError(UnpackErrorCode.FAILED, `${tool}: ${err?.message ?? String(e)}`, {});
}
