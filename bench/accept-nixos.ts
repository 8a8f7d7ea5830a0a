/**
 * Acceptance of `fodder sources --nixos-config` on a real nixpkgs tree: a small configuration
 * (a boot loader, a root file system, the openssh service) is evaluated by fodder, and its
 * sources must be exactly the fixed-output derivations `nix-store -qR` finds in the closure of
 * the toplevel's .drv, as a plain `nix-instantiate` of the same toplevel writes it. Nothing is
 * fetched or built; both write their .drv files into chroot stores in a temporary directory.
 *
 *   npm run accept:nixos -- --nixpkgs PATH
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { realTreeArgs } from './real-args.js';

const { nixpkgs } = realTreeArgs('npm run accept:nixos -- --nixpkgs PATH');
const root = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'fodder-accept-nixos-'));
const system = 'x86_64-linux';

const configuration = join(dir, 'configuration.nix');
writeFileSync(
  configuration,
  `{ config, pkgs, ... }:
{
  boot.loader.grub.device = "/dev/sda";
  fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; };
  services.openssh.enable = true;
}
`,
);

try {
  // the plain way: nix-instantiate of the toplevel, into a chroot store of its own
  const store = join(dir, 'plain');
  const t0 = Date.now();
  const plain = await execa(
    'nix-instantiate',
    [
      '--store',
      store,
      '-E',
      `(import ${JSON.stringify(join(nixpkgs, 'nixos'))} { configuration = ${configuration}; system = "${system}"; }).config.system.build.toplevel`,
    ],
    { reject: false, env: { NIX_PATH: '' } },
  );
  const plainMs = Date.now() - t0;
  if (plain.exitCode !== 0) throw new Error(`nix-instantiate failed:\n${plain.stderr}`);
  const toplevel = plain.stdout.trim().split('\n').pop()!;
  const closure = (await execa('nix-store', ['--store', store, '-qR', toplevel])).stdout.split('\n').filter((p) => p.endsWith('.drv'));
  const truth = new Set<string>();
  for (let i = 0; i < closure.length; i += 300) {
    const shown = await execa('nix', ['--extra-experimental-features', 'nix-command', 'show-derivation', '--store', store, ...closure.slice(i, i + 300)]);
    for (const [drv, d] of Object.entries(JSON.parse(shown.stdout) as Record<string, { outputs: Record<string, { hash?: string }> }>)) {
      if (d.outputs.out?.hash) truth.add(drv);
    }
  }

  // fodder
  const t1 = Date.now();
  const ours = await execa(
    'node',
    [join(root, 'dist', 'src', 'cli', 'main.js'), 'sources', '--nixos-config', configuration, '--nixpkgs', nixpkgs, '--system', system, '--json'],
    { reject: false },
  );
  const oursMs = Date.now() - t1;
  if (ours.exitCode !== 0) throw new Error(`fodder sources failed:\n${ours.stderr}`);
  const answer = JSON.parse(ours.stdout) as { members: { drvPath: string }[]; sources: { drvPaths: string[] }[]; nix: string };
  const found = new Set(answer.sources.flatMap((s) => s.drvPaths));
  const missing = [...truth].filter((d) => !found.has(d));
  const extra = [...found].filter((d) => !truth.has(d));
  const checks: [string, boolean][] = [
    ['the same toplevel .drv as nix-instantiate', answer.members.length === 1 && answer.members[0].drvPath === toplevel],
    [`the FODs nix-store -qR finds (${truth.size}), no more, no fewer`, missing.length === 0 && extra.length === 0],
  ];
  console.log(`NixOS configuration (grub, /, openssh) of ${nixpkgs}, ${system}, Nix ${answer.nix}`);
  console.log(`  toplevel ${toplevel}: ${closure.length} derivations in its closure, ${truth.size} fixed-output`);
  console.log(`  fodder sources --nixos-config: ${answer.sources.length} sources (${found.size} fixed-output derivations) in ${(oursMs / 1000).toFixed(1)} s`);
  console.log(`  nix-instantiate of the same toplevel: ${(plainMs / 1000).toFixed(1)} s (ratio ${(oursMs / plainMs).toFixed(2)})`);
  for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  for (const d of missing.slice(0, 10)) console.log(`    missing ${d}`);
  for (const d of extra.slice(0, 10)) console.log(`    extra ${d}`);
  if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
