/**
 * The package set a service follows as a git branch (`service.nixpkgs: { git, branch }`): before
 * each job's crawl, the branch head is fetched into the service's own clone (`nixpkgs-git/`
 * beside the database) and checked out there, and the crawl records that commit. Only the
 * branch's newest commit is fetched (`--depth 1`), so following nixpkgs does not cost its
 * history.
 */
import { isolatedGitEnv } from '../fetch/plugins/git.js';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PackageSetGit } from '../config/settings.js';
import { ErrorCode, FodderError } from '../errors.js';
import { runProcess } from '../process.js';

/** The checkout to crawl and the commit it is at. */
export interface PackageSetRevision {
  path: string;
  commit: string;
}

/** git with no user or system config, never asking for a password, `file://` allowed (the URL is the config's, not a package's). */
const gitEnv = () => isolatedGitEnv(process.env.HOME ?? '/nonexistent');

async function git(dir: string, args: string[], signal?: AbortSignal): Promise<string> {
  const r = await runProcess('git', ['-C', dir, ...args], { env: gitEnv(), signal, stderrLimit: { max: 4000, keep: 'tail' } }).catch((err: Error) => {
    throw new FodderError(ErrorCode.GIT_FAILED, `cannot run git: ${err.message}`);
  });
  if (signal?.aborted) throw new FodderError(ErrorCode.INTERRUPTED, `updating the package set stopped by ${String(signal.reason)}`);
  if (r.code !== 0) {
    throw new FodderError(ErrorCode.GIT_FAILED, `git ${args[0]} (updating the package set in ${dir}): ${r.stderr || `exit ${r.code}`}`, {
      dir,
      stderr: r.stderr,
    });
  }
  return r.stdout.toString('utf8').trim();
}

/**
 * Fetches the branch head of `source.url` into `source.dir` (made when missing) and checks it
 * out, discarding anything else in the work tree; returns the checkout and its commit.
 */
export async function updatePackageSet(source: PackageSetGit, signal?: AbortSignal): Promise<PackageSetRevision> {
  if (!existsSync(join(source.dir, '.git'))) {
    mkdirSync(source.dir, { recursive: true });
    await git(source.dir, ['init', '--quiet'], signal);
  }
  const ref = `refs/remotes/follow/${source.branch}`;
  await git(source.dir, ['fetch', '--quiet', '--depth', '1', '--no-tags', '--', source.url, `+refs/heads/${source.branch}:${ref}`], signal);
  const commit = await git(source.dir, ['rev-parse', '--verify', `${ref}^{commit}`], signal);
  await git(source.dir, ['checkout', '--quiet', '--force', '--detach', commit], signal);
  await git(source.dir, ['clean', '--quiet', '-d', '--force', '-x'], signal);
  return { path: source.dir, commit };
}
