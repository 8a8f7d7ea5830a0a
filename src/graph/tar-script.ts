/**
 * Recognising a postFetch that makes `$out` a directory and untars the download into it with
 * GNU tar (TeX Live's fetcher in nixpkgs 2016-2018: `mkdir "$out"; tar -xf $downloadedFile
 * --strip-components=N -C "$out" --anchored --exclude=tlpkg --keep-old-files`), by what the tar
 * command does: only options whose effect fodder reproduces are accepted.
 */
import { commandWords, statements } from './shell-script.js';

/** What the tar command of such a script does. */
export interface TarScriptShape {
  /** `--strip-components=N` */
  stripComponents: number;
  /** `--anchored --exclude=P`: members named P or below P/ (as stored in the archive) are skipped */
  exclude: string[];
  /** `--keep-old-files`: a member that would replace an existing file is an error */
  keepOldFiles: boolean;
}

export interface TarScript {
  shape: TarScriptShape;
  /** statements after the tar command (a user's postUnpack), empty when there are none */
  user: string[];
}

const OUT_WORDS = new Set(['$out']);
const PLAIN_PATTERN = /^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)*$/;

/**
 * Recognises `mkdir "$out"` followed by one `tar` extraction of `$downloadedFile` into `$out`
 * (the download must have gone to a temporary file: `downloadToTemp`). Null when the script is
 * anything else, or its tar command has an option whose effect fodder does not reproduce.
 */
export function readTarScript(env: Readonly<Record<string, string>>): TarScript | null {
  if (env.downloadToTemp !== '1') return null;
  const st = statements(env.postFetch ?? '');
  const mkdir = commandWords(st[0] ?? '');
  if (!mkdir || mkdir.length !== 2 || mkdir[0] !== 'mkdir' || !OUT_WORDS.has(mkdir[1])) return null;
  const tar = commandWords(st[1] ?? '');
  if (!tar || tar[0] !== 'tar') return null;
  const shape = tarOptions(tar.slice(1));
  return shape ? { shape, user: st.slice(2) } : null;
}

function tarOptions(args: string[]): TarScriptShape | null {
  let extract = false;
  let file: string | null = null;
  let dir: string | null = null;
  let anchored = false;
  const shape: TarScriptShape = { stripComponents: 0, exclude: [], keepOldFiles: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (name: string): string | null => {
      if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
      if (a === name && i + 1 < args.length) return args[++i];
      return null;
    };
    let v: string | null;
    if (/^-?x[v]*f$/.test(a) && i + 1 < args.length) {
      extract = true;
      file = args[++i];
    } else if (a === '-x' || a === '--extract') extract = true;
    else if (a === '-v' || a === '--verbose')
      continue; // lists names on stdout: no effect on the tree
    else if ((v = value('-f')) !== null || (v = value('--file')) !== null) file = v;
    else if ((v = value('-C')) !== null || (v = value('--directory')) !== null) dir = v;
    else if ((v = value('--strip-components')) !== null) {
      if (!/^\d{1,2}$/.test(v)) return null;
      shape.stripComponents = Number(v);
    } else if (a === '--anchored') anchored = true;
    else if ((v = value('--exclude')) !== null) {
      // unanchored or wildcard patterns match elsewhere too: not reproduced
      if (!anchored || !PLAIN_PATTERN.test(v)) return null;
      shape.exclude.push(v);
    } else if (a === '--keep-old-files' || a === '-k') shape.keepOldFiles = true;
    else return null;
  }
  if (!extract || file !== '$downloadedFile' || dir === null || !OUT_WORDS.has(dir)) return null;
  return shape;
}

/**
 * The name GNU tar writes a member under with this shape, or null when it skips it (excluded,
 * or no component left after stripping). Exclusion looks at the name as stored, stripping
 * counts every `/`-separated component (a leading `.` too).
 */
export function tarMemberName(name: string, shape: TarScriptShape): string | null {
  for (const p of shape.exclude) if (name === p || name.startsWith(`${p}/`)) return null;
  if (shape.stripComponents === 0) return name;
  const parts = name.split('/');
  const rest = parts.slice(shape.stripComponents).join('/');
  return rest.replace(/\/+$/, '') === '' ? null : rest;
}
