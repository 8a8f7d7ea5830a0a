/**
 * Acceptance of the NixOS module (nix/module.nix): evaluated with the real NixOS module system
 * of a nixpkgs tree (`eval-config.nix`), the generated `fodder.service` must run
 * `fodder serve --config <the settings as a store file> --listen <listen>` as the dedicated
 * user, with Nix and git on its PATH, the hardening options, the state directory as its only
 * writable path, and the firewall port opened when asked.
 *
 *   npm run accept:module -- --nixpkgs PATH
 */
import { execa } from 'execa';
import { join, resolve } from 'node:path';
import { realTreeArgs } from './real-args.js';

const { nixpkgs } = realTreeArgs('npm run accept:module -- --nixpkgs PATH');
const root = resolve(import.meta.dirname, '..', '..');

interface Evaluated {
  execStart: string;
  user: string;
  envPath: string;
  firewall: number[];
  userIsSystem: boolean;
  unit: string;
}

const t0 = Date.now();
const r = await execa(
  'nix-instantiate',
  ['--eval', '--strict', '--json', join(root, 'bench', 'accept-module.nix'), '--arg', 'nixpkgs', nixpkgs, '--arg', 'module', join(root, 'nix', 'module.nix')],
  { reject: false },
);
if (r.exitCode !== 0) {
  console.error(`the module does not evaluate with ${nixpkgs}:\n${r.stderr}`);
  process.exit(1);
}
const e = JSON.parse(r.stdout) as Evaluated;
const unitLines = new Set(e.unit.split('\n'));
const checks: [string, boolean][] = [
  [
    'ExecStart runs fodder serve with the config and --listen',
    /^\/nix\/store\/[a-z0-9]{32}-fodder\/bin\/fodder serve --config \/nix\/store\/[a-z0-9]{32}-fodder\.yaml --listen 0\.0\.0\.0:7480$/.test(e.execStart),
  ],
  ['User=fodder, a system user', e.user === 'fodder' && e.userIsSystem && unitLines.has('User=fodder') && unitLines.has('Group=fodder')],
  ['Nix and git on its PATH', /-nix-[^/:]+\/bin(:|$)/.test(e.envPath) && /-git-[^/:]+\/bin(:|$)/.test(e.envPath)],
  ['the firewall opens the port', e.firewall.includes(7480)],
  ...[
    'NoNewPrivileges=true',
    'ProtectSystem=strict',
    'ReadWritePaths=/var/lib/fodder',
    'PrivateTmp=true',
    'ProtectHome=true',
    'StateDirectory=fodder',
    'WorkingDirectory=/var/lib/fodder',
  ].map((line): [string, boolean] => [line, unitLines.has(line)]),
];
console.log(`nix/module.nix evaluated with ${nixpkgs} in ${Date.now() - t0} ms`);
console.log(`  ExecStart=${e.execStart}`);
console.log(`  User=${e.user}`);
for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
if (checks.some(([, ok]) => !ok)) process.exit(1);
