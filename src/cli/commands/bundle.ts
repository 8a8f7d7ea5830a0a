/**
 * Off the network: `fodder manifest` (what a mirror holds), `fodder bundle create` (what a
 * target needs, minus what a remote mirror's manifest holds) and `fodder bundle import`.
 * See docs/offgrid.md.
 */
import type { Command } from 'commander';
import { ErrorCode, FodderError } from '../../errors.js';
import { resolveSettings } from '../../config/settings.js';
import { addTargetOptions, resolveTarget, type TargetFlags } from './target-options.js';
import { formatBytes } from '../fetch-progress.js';
import { collect, isInteractive, printJson } from '../common.js';
import { createBundleProgress } from '../bundle-progress.js';
import { writeFileSync } from 'node:fs';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** `2TB`, `500GiB`, `1.5T`, `1048576`: bytes (decimal units as disks are sold, binary with `i`). */
function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined || Number(m[1]) <= 0) {
    throw new FodderError(ErrorCode.USAGE, `--volume-size must be a size like 2TB, 500GiB or a number of bytes, got "${text}"`, {
      option: '--volume-size',
      value: text,
    });
  }
  return Math.floor(Number(m[1]) * unit);
}

const TRUSTED_KEY_OPTION = [
  '--trusted-key <file>',
  'a public key file (name:base64) whose signatures are trusted, besides bundle.trustedKeys (repeatable)',
] as const;

interface CreateFlags extends TargetFlags {
  out?: string;
  since?: string;
  volumeSize?: string;
  dryRun?: boolean;
  mirror?: string;
  trustedKey?: string[];
  json?: boolean;
  progress?: boolean;
}

export function registerBundle(program: Command): void {
  program
    .command('manifest')
    .description('what a mirror holds (tarballs, binary cache entries) as compact JSON, signed with the cache key when one is configured')
    .option('--mirror <dir>', 'the mirror (default fetch.mirror)')
    .option('--config <file>', 'YAML config (fetch.mirror, fetch.cache.secretKeyFile)')
    .option('--sign-key <file>', 'sign with this Nix secret key (instead of fetch.cache.secretKeyFile)')
    .option('--out <file>', 'write it here instead of standard output')
    .action(async (flags: { mirror?: string; config?: string; signKey?: string; out?: string }) => {
      const s = resolveSettings({ configFile: flags.config, flags: { mirror: flags.mirror, signKey: flags.signKey } });
      // each action loads what it runs, as the other commands do: none of it at every command's start
      const [{ fetchRunSettings }, { buildManifest, formatManifest }] = await Promise.all([
        import('../../fetch/options.js'),
        import('../../mirror/manifest.js'),
      ]);
      const { cache } = fetchRunSettings(s.fetch);
      const text = formatManifest(buildManifest(s.mirror, cache.secretKey));
      if (flags.out) writeFileSync(flags.out, text);
      else process.stdout.write(text);
    });

  const bundle = program.command('bundle').description('carry mirror objects to a mirror off the network (create, import)');
  const create = bundle
    .command('create [attr]')
    .description("the tarballs and cache entries a target (or every crawled FOD) needs from the ground mirror, minus what a remote's manifest holds");
  addTargetOptions(create, 'YAML config (fetch.mirror, db, bundle.trustedKeys; variants, overlays, nix.bin for a target evaluated now)')
    .option('--out <path>', 'a directory (volume-N/ inside when split), or - for a tar stream on standard output')
    .option('--kind <kind>', 'without a target: only FODs of this kind')
    .option('--since <manifest>', 'leave out what this manifest (`fodder manifest` on the remote mirror) says the remote holds')
    .option('--volume-size <size>', 'split into volumes of at most this size (2TB, 500GiB, bytes)')
    .option('--dry-run', 'print the object count and bytes, write nothing')
    .option('--mirror <dir>', 'the ground mirror (default fetch.mirror)')
    .option(...TRUSTED_KEY_OPTION, collect('--trusted-key'))
    .option('--json', 'print the summary as JSON (on stderr with --out -)')
    .option('--no-progress', 'no progress output')
    .action(async (attr: string | undefined, flags: CreateFlags) => {
      const s = resolveSettings({ configFile: flags.config, flags: { mirror: flags.mirror, db: flags.db, trustedKeys: flags.trustedKey } });
      if (!flags.out && !flags.dryRun) throw new FodderError(ErrorCode.USAGE, 'bundle create needs --out PATH (or --dry-run)', { option: '--out' });
      const volumeSize = flags.volumeSize === undefined ? null : parseSize(flags.volumeSize);
      if (flags.out === '-' && volumeSize !== null)
        throw new FodderError(ErrorCode.USAGE, '--volume-size needs --out DIR: a tar stream is one volume', { option: '--volume-size' });
      const [{ readManifest }, { planBundle, writeBundleDir, writeBundleTar }] = await Promise.all([
        import('../../mirror/manifest.js'),
        import('../../mirror/bundle-create.js'),
      ]);
      const since = flags.since ? readManifest(flags.since, s.bundle.trustedKeys) : null;
      const target = await resolveTarget(attr, flags, { command: 'bundle create', allowNone: true, configForAll: true, db: s.db });
      const plan = planBundle(target.fods, s.mirror, since, volumeSize);
      const summary = {
        target: target.label,
        fods: plan.fods,
        remoteHas: plan.remoteHas,
        groundLacks: plan.groundLacks.map((f) => f.outPath),
        objects: plan.objects,
        bytes: plan.bytes,
        largest: plan.largest,
        volumes: plan.volumes.map((v) => ({ objects: v.length, bytes: v.reduce((n, o) => n + o.size, 0) })),
        out: flags.dryRun ? null : flags.out!,
      };
      const say = flags.out === '-' ? process.stderr : process.stdout;
      const line = `${target.label}: ${plan.objects} objects, ${formatBytes(plan.bytes)} (${plan.bytes} bytes) in ${plan.volumes.length} volume(s); the remote holds ${plan.remoteHas} of ${plan.fods} outputs, the ground mirror lacks ${plan.groundLacks.length}`;
      if (!flags.json) say.write(`${line}\n`);
      if (!flags.dryRun) {
        const progress = flags.progress === false ? null : createBundleProgress('bundle create', isInteractive());
        progress?.expect(plan.objects, plan.bytes);
        const onObject = progress ? (o: { size: number }) => progress.object(o.size) : undefined;
        try {
          if (flags.out === '-') await writeBundleTar(plan, s.mirror, process.stdout, onObject);
          else if (flags.out!.endsWith('.tar')) await writeBundleTar(plan, s.mirror, flags.out!, onObject);
          else await writeBundleDir(plan, s.mirror, flags.out!, onObject);
        } finally {
          progress?.finish();
        }
      }
      if (flags.json) say.write(JSON.stringify(summary, null, 2) + '\n');
      else if (!flags.dryRun) say.write(`written to ${flags.out === '-' ? 'standard output' : flags.out}\n`);
    });

  bundle
    .command('import <path>')
    .description('admit a bundle (directory, volume, tar file, or - for a tar stream) into a mirror, verifying every object')
    .option('--mirror <dir>', 'the mirror to import into (default fetch.mirror)')
    .option('--config <file>')
    .option(...TRUSTED_KEY_OPTION, collect('--trusted-key'))
    .option('--json', 'print the result as JSON')
    .option('--no-progress', 'no progress output')
    .action(async (path: string, flags: { mirror?: string; config?: string; trustedKey?: string[]; json?: boolean; progress?: boolean }) => {
      const s = resolveSettings({ configFile: flags.config, flags: { mirror: flags.mirror, trustedKeys: flags.trustedKey } });
      const { importBundle } = await import('../../mirror/bundle-import.js');
      const progress = flags.progress === false ? null : createBundleProgress('bundle import', isInteractive());
      const result = await importBundle(path === '-' ? process.stdin : path, {
        mirrorDir: s.mirror,
        trustedKeys: s.bundle.trustedKeys,
        priority: s.fetch.cache.priority,
        onIndex: progress ? (objects, bytes) => progress.expect(objects, bytes) : undefined,
        onObject: progress ? (o) => progress.object(o.size) : undefined,
      }).finally(() => progress?.finish());
      if (flags.json) printJson(result);
      else {
        const lines = [`imported ${result.imported} objects (${formatBytes(result.bytes)}) into ${result.mirror}; ${result.present} were there already`];
        for (const r of result.refused) lines.push(`  REFUSED ${r.path}: ${r.reason}`);
        process.stdout.write(lines.join('\n') + '\n');
      }
      if (result.refused.length) {
        throw new FodderError(ErrorCode.BUNDLE_REFUSED, `${result.refused.length} objects refused (listed above); everything else was imported`, {
          refused: result.refused.length,
        });
      }
    });
}
