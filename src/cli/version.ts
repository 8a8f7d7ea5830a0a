import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/defaults.js';
import { nixCommand } from '../config/nix-bin.js';

/** fodder's own version, from its package.json. */
export function fodderVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * What `fodder --version` prints: fodder's version, then what the Nix on PATH says of itself
 * (`nix-instantiate --version`) and where it is, or that there is none.
 */
export async function versionText(): Promise<string> {
  const lines = [`fodder ${fodderVersion()}`];
  const command = nixCommand('nix-instantiate');
  if (command === null) {
    lines.push('Nix: nix-instantiate not found on PATH');
  } else {
    // loaded here: every command reads fodder's version at its start, only --version runs Nix
    const { execa } = await import('execa');
    const r = await execa(command, ['--version'], { reject: false });
    const said = String(r.stdout).trim().split('\n')[0];
    lines.push(r.exitCode === 0 && said ? `${said} (${command})` : `Nix: ${command} --version failed: ${String(r.stderr).trim()}`);
  }
  return lines.join('\n') + '\n';
}
