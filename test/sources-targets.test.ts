/**
 * `fodder sources` on targets evaluated now (--expr, --file, --nixos-config, --flake) and on a
 * crawled attribute for several systems at once. Nix is the judge: the FODs of each member are
 * what `nix-store -qR` finds in the closure of the .drv a plain `nix-instantiate` writes for the
 * same expression, with the outputHash its .drv files declare.
 */
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURE, ROOT, fodder, tempDir } from './helpers/cli.js';
import { closureDrvs, showDerivations } from './helpers/nix.js';
import { drvStoreUrl } from '../src/graph/store-slots.js';

const CONFIGS = join(ROOT, 'test', 'fixtures', 'nixos-configs');

interface Source {
  drvPath: string;
  outPath: string;
  name: string;
  hash: { algo: string; mode: string; hex: string };
  drvPaths: string[];
  targets: { system: string; variant: string | null; members?: string[] }[];
}
interface Answer {
  target: string;
  kind: string;
  systems: string[];
  variants: string[];
  members: { name: string; system: string; variant: string | null; drvPath: string }[];
  failures: { name: string; system: string; variant: string | null; errorKind: string; error: string }[];
  sources: Source[];
}

async function sources(args: string[]): Promise<Answer> {
  const r = await fodder(['sources', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Answer;
}

/** What Nix says: the drvPath of `expr` (plain nix-instantiate) and the FODs of its closure, by drvPath, with their outputs. */
async function nixTruth(expr: string): Promise<{ drvPath: string; fods: Map<string, { path: string; hashAlgo?: string; hash?: string }> }> {
  const store = tempDir('fodder-truth-');
  const r = await execa('nix-instantiate', ['--store', drvStoreUrl(store), '-E', expr]);
  const drvPath = r.stdout.trim();
  const closure = await closureDrvs(store, drvPath);
  const shown = await showDerivations(store, closure);
  const fods = new Map(Object.entries(shown).flatMap(([d, s]) => (s.outputs.out?.hash ? [[d, s.outputs.out] as const] : [])));
  return { drvPath, fods };
}

const pkgsExpr = (system: string) => `(import ${FIXTURE} { system = "${system}"; config = { }; overlays = [ ]; })`;
const nixosExpr = (config: string, system = 'x86_64-linux') =>
  `(import ${FIXTURE}/nixos { configuration = ${join(CONFIGS, config)}; system = "${system}"; }).config.system.build.toplevel`;

/** The answer's sources for one member (and system) are exactly what Nix finds for its .drv. */
function expectJudged(answer: Answer, truth: Awaited<ReturnType<typeof nixTruth>>, member: string, system: string): void {
  const m = answer.members.find((x) => x.name === member && x.system === system);
  expect(m?.drvPath, `${member} on ${system}`).toBe(truth.drvPath);
  const ours = answer.sources.filter((s) => s.targets.some((t) => t.system === system && t.members?.includes(member)));
  // a source is keyed by its output path: the record shown may be another system's drvPath
  expect([...new Set(ours.map((s) => s.outPath))].sort()).toEqual([...new Set([...truth.fods.values()].map((o) => o.path))].sort());
  // every FOD nix-store -qR finds is among the sources' derivations
  const drvs = new Set(ours.flatMap((s) => s.drvPaths));
  for (const d of truth.fods.keys()) expect(drvs.has(d), d).toBe(true);
  for (const s of ours) {
    const out = [...truth.fods.values()].find((o) => o.path === s.outPath)!;
    expect(`${s.hash.mode === 'recursive' ? 'r:' : ''}${s.hash.algo}`).toBe(out.hashAlgo);
    expect(s.hash.hex).toBe(out.hash);
  }
}

describe('fodder sources on targets evaluated now', () => {
  it('--expr: a list of derivations, each member judged by nix-store -qR; failing members listed, the rest answered', async () => {
    const r = await fodder(['sources', '--expr', '[ pkgs.hello pkgs.zlib pkgs.aborting pkgs.brokenThing 3 ]', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const answer = JSON.parse(r.stdout) as Answer;
    expect(answer.kind).toBe('expr');
    expect(answer.members.map((m) => m.name)).toEqual(['0', '1']);
    expectJudged(answer, await nixTruth(`${pkgsExpr('x86_64-linux')}.hello`), '0', 'x86_64-linux');
    expectJudged(answer, await nixTruth(`${pkgsExpr('x86_64-linux')}.zlib`), '1', 'x86_64-linux');
    const failed = Object.fromEntries(answer.failures.map((f) => [f.name, f]));
    expect(failed['2'].errorKind).toBe('uncatchable');
    expect(failed['2'].error).toMatch(/aborting: this attribute always aborts evaluation/);
    expect(failed['3'].errorKind).toBe('catchable');
    expect(failed['3'].error).toMatch(/marked as broken/);
    expect(failed['4']).toMatchObject({ errorKind: 'not-derivation', error: 'it is an int, not a derivation' });
    // and on stderr, one line each
    expect(r.stderr.split('\n').filter((l) => l.startsWith('fodder: warning:'))).toHaveLength(3);
  });

  it('--file: a function of pkgs yielding a set; several systems, with per-source provenance', async () => {
    const dir = tempDir();
    const file = join(dir, 'targets.nix');
    writeFileSync(file, '{ pkgs }: { inherit (pkgs) hello xz; }\n');
    const answer = await sources(['--file', file, '--system', 'x86_64-linux,aarch64-linux']);
    expect(answer.systems).toEqual(['x86_64-linux', 'aarch64-linux']);
    for (const system of answer.systems) {
      expectJudged(answer, await nixTruth(`${pkgsExpr(system)}.hello`), 'hello', system);
      expectJudged(answer, await nixTruth(`${pkgsExpr(system)}.xz`), 'xz', system);
    }
    const hello = answer.sources.find((s) => s.name === 'hello-2.12.tar.gz')!;
    expect(hello.targets).toEqual([
      { system: 'x86_64-linux', variant: 'default', members: ['hello'] },
      { system: 'aarch64-linux', variant: 'default', members: ['hello'] },
    ]);
    // each system's bootstrap tools are a source of that system alone
    const boot = answer.sources.filter((s) => s.name === 'bootstrap-tools.tar.gz');
    expect(boot.map((s) => s.targets.map((t) => t.system))).toEqual(expect.arrayContaining([['x86_64-linux'], ['aarch64-linux']]));
  });

  it('--variant: each variant evaluated, a source needed by one variant only says so', async () => {
    const answer = await sources(['--expr', 'pkgs.foo', '--variant', 'default,permissive']);
    expect(answer.variants).toEqual(['default', 'permissive']);
    for (const s of answer.sources) expect(s.targets.every((t) => t.system === 'x86_64-linux')).toBe(true);
    expect(answer.members.map((m) => m.variant).sort()).toEqual(['default', 'permissive']);
  });

  it('--nixos-config: the closure of the toplevel, which depends on the configuration', async () => {
    const minimal = await sources(['--nixos-config', join(CONFIGS, 'minimal.nix')]);
    const ssh = await sources(['--nixos-config', join(CONFIGS, 'openssh.nix')]);
    expect(minimal.kind).toBe('nixos');
    expect(minimal.variants).toEqual([]);
    expect(minimal.members).toEqual([{ name: '', system: 'x86_64-linux', variant: null, drvPath: expect.stringMatching(/-nixos-system-nixos\.drv$/) }]);
    expectJudged(minimal, await nixTruth(nixosExpr('minimal.nix')), '', 'x86_64-linux');
    expectJudged(ssh, await nixTruth(nixosExpr('openssh.nix')), '', 'x86_64-linux');
    const names = (a: Answer) => a.sources.map((s) => s.name);
    expect(names(minimal)).not.toContain('openssl-3.0.13.tar.gz');
    expect(names(ssh)).toEqual(expect.arrayContaining([...names(minimal), 'openssl-3.0.13.tar.gz', 'hello-2.12.tar.gz']));
  });

  it('--nixos-config --missing: against a mirror not made yet, every source is lacking, and a note says the directory does not exist', async () => {
    const ssh = await sources(['--nixos-config', join(CONFIGS, 'openssh.nix')]);
    const island = join(tempDir('fodder-island-'), 'mirror');
    const r = await fodder(['sources', '--nixos-config', join(CONFIGS, 'openssh.nix'), '--missing', '--mirror', island, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`${island} does not exist: counted as an empty mirror`);
    const answer = JSON.parse(r.stdout) as { have: number; lack: number; missing: { fod: Source }[] };
    expect(answer.have).toBe(0);
    expect(answer.missing.map((m) => m.fod.outPath).sort()).toEqual(ssh.sources.map((s) => s.outPath).sort());
  });

  it('--flake: a local flake whose input is the test package set by path, offline', async () => {
    const dir = tempDir('fodder-flake-');
    mkdirSync(join(dir, 'flake'));
    writeFileSync(
      join(dir, 'flake', 'flake.nix'),
      `{
  inputs.fixture = { url = "path:${FIXTURE}"; flake = false; };
  outputs = { self, fixture }: {
    packages.x86_64-linux.hello = (import fixture { system = "x86_64-linux"; }).hello;
  };
}
`,
    );
    const answer = await sources(['--flake', `${join(dir, 'flake')}#hello`]);
    expect(answer.kind).toBe('flake');
    expectJudged(answer, await nixTruth(`${pkgsExpr('x86_64-linux')}.hello`), '', 'x86_64-linux');
    const missing = await fodder(['sources', '--flake', `${join(dir, 'flake')}#nothere`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/TARGET_FAILED.*--flake .*#nothere \(x86_64-linux\) failed to evaluate: .*has no attribute nothere/);
  });

  it('a target that fails is an error naming it, with the first line of Nix message and a non-zero exit', async () => {
    const missing = await fodder(['sources', '--expr', 'pkgs.noSuchPackage']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(
      /^fodder: error \[TARGET_FAILED\]: --expr "pkgs.noSuchPackage" \(x86_64-linux, default\) failed to evaluate: error: attribute 'noSuchPackage' missing/,
    );
    const thrown = await fodder(['sources', '--expr', 'throw "no such thing"']);
    expect(thrown.stderr).toMatch(/TARGET_FAILED.*failed to evaluate: error: no such thing/);
    const number = await fodder(['sources', '--expr', '42']);
    expect(number.stderr).toMatch(/TARGET_FAILED.*it is an int, not a derivation, a list or a set of them/);
    const none = await fodder(['sources', '--expr', '[ pkgs.aborting ]']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/TARGET_FAILED\]: --expr .* yields no derivation: member "0" \(x86_64-linux, default\): error: evaluation aborted/);
    const system = await fodder(['sources', '--expr', 'pkgs.hello', '--system', 'bogus-system']);
    expect(system.code).toBe(1);
    expect(system.stderr).toMatch(/fodder: error \[(NIX_FAILED|TARGET_FAILED)\]: .*bogus-system/);
  });

  it('refuses two targets at once, and options that do not apply', async () => {
    const two = await fodder(['sources', 'hello', '--expr', 'pkgs.hello']);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/one target at a time, got ATTR and --expr/);
    const variant = await fodder(['sources', '--nixos-config', join(CONFIGS, 'minimal.nix'), '--variant', 'permissive']);
    expect(variant.code).toBe(2);
    expect(variant.stderr).toMatch(/--variant does not apply to --nixos-config/);
    const flake = await fodder(['sources', '--flake', 'nohash']);
    expect(flake.stderr).toMatch(/--flake: "nohash" is not REF#ATTR/);
    const none = await fodder(['sources']);
    expect(none.code).toBe(2);
  });
});

describe('fodder sources ATTR for several systems', () => {
  it('answers the union of the crawled closures, each source with the systems it was seen in', async () => {
    const dir = tempDir();
    const db = join(dir, 'f.db');
    const crawled = await fodder([
      'crawl',
      '--attr',
      'hello',
      '--system',
      'x86_64-linux,aarch64-linux',
      '--variant',
      'default',
      '--db',
      db,
      '--no-progress',
      '--workers',
      '1',
    ]);
    expect(crawled.code, crawled.stderr).toBe(0);
    const one = await fodder(['sources', 'hello', '--db', db, '--json']);
    const single = JSON.parse(one.stdout) as Record<string, unknown>;
    expect(Object.keys(single).sort()).toEqual(['attr', 'crawl', 'drvPath', 'sources', 'system', 'variant']);
    const answer = await fodder(['sources', 'hello', '--db', db, '--system', 'x86_64-linux,aarch64-linux', '--json']);
    expect(answer.code, answer.stderr).toBe(0);
    const a = JSON.parse(answer.stdout) as { targets: { system: string }[]; sources: Source[] };
    expect(a.targets.map((t) => t.system)).toEqual(['x86_64-linux', 'aarch64-linux']);
    // the same as evaluating it now
    const now = await sources(['--expr', 'pkgs.hello', '--system', 'x86_64-linux,aarch64-linux']);
    expect(a.sources.map((s) => [s.outPath, s.targets.map((t) => t.system)])).toEqual(now.sources.map((s) => [s.outPath, s.targets.map((t) => t.system)]));
  });
});
