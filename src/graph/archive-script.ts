/**
 * What the postFetch of an archive FOD does, read from its environment: fetchzip's unpacking
 * and placement in the form of any nixpkgs version (fetchzip.ts), or a GNU tar extraction into
 * `$out` (tar-script.ts, TeX Live's fetcher of 2016-2018). The crawl classifies by it (`archive`,
 * `postFetch`); the archive fetcher reproduces what it says.
 */
import { readFetchzipScript, type FetchzipShape } from './fetchzip.js';
import { readTarScript, type TarScriptShape } from './tar-script.js';

/** How the download becomes `$out`. */
export type ArchiveRecipe = { type: 'fetchzip'; shape: FetchzipShape } | { type: 'tar'; shape: TarScriptShape };

/** A recognised archive script: the recipe, and what a user added after it (statements). */
export interface ArchiveScript {
  recipe: ArchiveRecipe;
  user: string[];
}

/** The archive script of a FOD's environment, or null when its postFetch is no recognised unpacking. */
export function readArchiveScript(env: Readonly<Record<string, string>>): ArchiveScript | null {
  const zip = readFetchzipScript(env.postFetch ?? '');
  if (zip) return { recipe: { type: 'fetchzip', shape: zip.shape }, user: zip.user };
  const tar = readTarScript(env);
  if (tar) return { recipe: { type: 'tar', shape: tar.shape }, user: tar.user };
  return null;
}

export type ArchiveRecipeResult =
  | { ok: true; recipe: ArchiveRecipe }
  /** custom: a recognised unpacking followed by a user's own statements */
  | { ok: false; custom: boolean; reason: string };

/**
 * The recipe of a plain archive FOD (nothing added to the unpacking), or why there is none:
 * the postFetch is no recognised unpacking, a user added statements to it, or the environment
 * contradicts it.
 */
export function archiveRecipe(env: Readonly<Record<string, string>>): ArchiveRecipeResult {
  const script = readArchiveScript(env);
  if (!script) return { ok: false, custom: true, reason: 'postFetch is not a recognised unpacking (fetchzip, or tar into $out)' };
  const what = script.recipe.type === 'fetchzip' ? 'fetchzip' : 'tar into $out';
  if (script.user.length > 0) return { ok: false, custom: true, reason: `${what} with a custom postFetch (${preview(script.user)})` };
  if (script.recipe.type === 'fetchzip' && env.stripRoot !== undefined && (env.stripRoot === '1') !== script.recipe.shape.stripRoot) {
    return { ok: false, custom: false, reason: 'stripRoot in the environment disagrees with the postFetch script' };
  }
  return { ok: true, recipe: script.recipe };
}

function preview(user: string[]): string {
  const s = user.join('; ');
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
