import type { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode, FodderError } from '../../errors.js';
import { generateKeyPair } from '../../nix-formats/narinfo.js';
import { printJson } from '../common.js';

/**
 * `fodder keygen NAME [--out DIR]`: an Ed25519 key pair in Nix's format, as
 * `nix-store --generate-binary-cache-key NAME SECRET PUBLIC` writes it: `DIR/NAME.secret`
 * (mode 0600) and `DIR/NAME.public`. The public key goes into a client's
 * `trusted-public-keys`; the secret key file into the mirror's `cache.secretKeyFile`.
 */
export function registerKeygen(program: Command): void {
  program
    .command('keygen <name>')
    .description('write a binary cache signing key pair (Nix format) as NAME.secret and NAME.public')
    .option('--out <dir>', 'directory for the two files', '.')
    .option('--force', 'replace existing key files')
    .option('--json', 'print the file names and the public key as JSON')
    .action((name: string, flags: { out: string; force?: boolean; json?: boolean }) => {
      if (!/^[A-Za-z0-9._-]+$/.test(name)) {
        throw new FodderError(ErrorCode.USAGE, `key name "${name}" must be letters, digits, '.', '_' or '-' (e.g. mirror.example.org-1)`, { name });
      }
      const dir = resolve(flags.out);
      const secretFile = join(dir, `${name}.secret`);
      const publicFile = join(dir, `${name}.public`);
      for (const f of [secretFile, publicFile]) {
        if (existsSync(f) && !flags.force) throw new FodderError(ErrorCode.USAGE, `${f} exists; pass --force to replace it`, { file: f });
      }
      const keys = generateKeyPair(name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(secretFile, keys.secretKey, { mode: 0o600 });
      chmodSync(secretFile, 0o600); // also when --force replaced a file with other permissions
      writeFileSync(publicFile, keys.publicKey, { mode: 0o644 });
      if (flags.json) {
        printJson({ name, secretKeyFile: secretFile, publicKeyFile: publicFile, publicKey: keys.publicKey });
        return;
      }
      process.stdout.write(`secret key: ${secretFile}\npublic key: ${publicFile}\n${keys.publicKey}\n`);
    });
}
