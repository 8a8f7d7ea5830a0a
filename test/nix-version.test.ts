import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, fodder, tempDir, writePackageSet } from './helpers/cli.js';

/** The Nix on PATH: what it says of itself and its `builtins.nixVersion`. */
let said: string, version: string;

beforeAll(async () => {
  said = (await execa('nix-instantiate', ['--version'])).stdout.trim();
  version = JSON.parse((await execa('nix-instantiate', ['--eval', '--json', '--store', 'dummy://', '-E', 'builtins.nixVersion'])).stdout) as string;
});

/** A package set of one derivation whose lib/minver.nix (when given) says `minver`. */
function setRequiring(minver: string | null): string {
  const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: {
    hello = derivation { name = "hello"; inherit system; builder = "/bin/sh"; };
  }`);
  if (minver !== null) {
    mkdirSync(join(set, 'lib'));
    writeFileSync(join(set, 'lib', 'minver.nix'), `# the least Nix this set needs\n"${minver}"\n`);
  }
  return set;
}

async function crawlSet(set: string, options: { json?: boolean; config?: string; env?: Record<string, string> } = {}) {
  const dir = tempDir();
  const db = join(dir, 'f.db');
  const args = ['crawl', '--nixpkgs', set, '--db', db, '--store', join(dir, 'store'), '--system', 'x86_64-linux', '--variant', 'default'];
  if (options.json !== false) args.push('--json');
  if (options.config) {
    writeFileSync(join(dir, 'c.yaml'), options.config);
    args.push('--config', join(dir, 'c.yaml'));
  }
  return { ...(await fodder(args, { env: options.env })), db, dir };
}

/** A directory holding nothing but `node`: a PATH on which there is no Nix. */
function pathWithoutNix(): string {
  const bin = join(tempDir(), 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  return bin;
}

describe('the Nix fodder runs', () => {
  it("fodder --version prints fodder's version and what the Nix on PATH says of itself", async () => {
    const r = await fodder(['--version']);
    expect(r.code, r.stderr).toBe(0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`fodder ${pkg.version}`);
    const where = (await execa('sh', ['-c', 'command -v nix-instantiate'])).stdout.trim();
    expect(lines[1]).toBe(`${said} (${where})`);
    expect(said).toContain(version);
    const none = await fodder(['-V'], { env: { PATH: pathWithoutNix() } });
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toBe(`fodder ${pkg.version}\nNix: nix-instantiate not found on PATH`); // less the final newline, which execa strips
  });

  it('the crawl summary names the Nix version, as JSON and as text', async () => {
    const set = setRequiring(null);
    const r = await crawlSet(set);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ nix: version, attrs: { total: 2, drv: 1, set: 1 } });
    const text = await crawlSet(set, { json: false });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`with Nix ${version};`);
  });

  it('refuses, before crawling, a package set whose lib/minver.nix asks for a newer Nix, naming both versions and the file', async () => {
    const set = setRequiring('99.0');
    const r = await crawlSet(set);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^fodder: error \[NIX_TOO_OLD\]: /);
    expect(lines[0]).toContain(`Nix ${version} `);
    expect(lines[0]).toContain('older than 99.0');
    expect(lines[0]).toContain(join(set, 'lib', 'minver.nix'));
    // nothing was crawled: no database was made
    expect(existsSync(r.db)).toBe(false);
  });

  it('compares versions as Nix does: the same version, or one with a "pre" suffix, is enough; one more component is not', async () => {
    expect((await crawlSet(setRequiring(version))).code).toBe(0);
    const pre = await crawlSet(setRequiring(`${version}pre`));
    expect(pre.code, pre.stderr).toBe(0);
    const more = await crawlSet(setRequiring(`${version}.1`));
    expect(more.code, more.stderr).toBe(1);
    expect(more.stderr).toContain(`[NIX_TOO_OLD]: Nix ${version} `);
    // Nix's own reading of the same pairs
    const cmp = async (a: string, b: string) =>
      Number(
        (await execa('nix-instantiate', ['--eval', '--store', 'dummy://', '-E', `builtins.compareVersions ${JSON.stringify(a)} ${JSON.stringify(b)}`])).stdout,
      );
    expect(await cmp(version, `${version}pre`)).toBe(1);
    expect(await cmp(version, `${version}.1`)).toBe(-1);
  });

  it("runs every Nix command from the config's nix.bin when PATH has no Nix, and names a nix.bin without one", async () => {
    // a directory holding the commands of the Nix on PATH (links named as the commands)
    const bin = join(tempDir(), 'nix-bin');
    mkdirSync(bin);
    for (const cmd of ['nix', 'nix-instantiate', 'nix-store']) {
      symlinkSync((await execa('sh', ['-c', `command -v ${cmd}`])).stdout.trim(), join(bin, cmd));
    }
    const set = setRequiring(null);
    const env = { PATH: pathWithoutNix() };
    const missing = await crawlSet(set, { env });
    expect(missing.code, missing.stderr).toBe(1);
    expect(missing.stderr).toContain('[NIX_MISSING]');
    const r = await crawlSet(set, { env, config: `nix:\n  bin: ${bin}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ nix: version, attrs: { total: 2, drv: 1, set: 1 } });
    const wrong = await crawlSet(set, { config: `nix:\n  bin: ${join(bin, 'nope')}\n` });
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(wrong.stderr).toContain(`key "nix.bin": ${join(bin, 'nope')} holds no executable nix-instantiate`);
  });
});
