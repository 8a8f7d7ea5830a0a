/**
 * Recognising nixpkgs' fetchzip in a FOD's environment by what its postFetch does, in every
 * form it has had since 2015: download renamed, `unpackFile`, the single top-level entry made
 * `$out` (stripRoot) or the whole unpack directory, then whatever a user added, then (since
 * 2018) `chmod 755 "$out"`. The crawl uses it to classify (`archive`, `postFetch`), the archive
 * fetcher to reproduce the placement exactly as that version's script does it.
 *
 * The script is read as statements (shell-script.ts), each recognised by its effect:
 *
 * | statement                                   | what it says                                    |
 * | ------------------------------------------- | ----------------------------------------------- |
 * | `export PATH=/nix/store/…/bin:$PATH`        | nothing (unzip on PATH, before 2019)            |
 * | `mkdir $out` before unpacking               | `$out` exists first: contents are moved into it |
 * | `renamed="$TMPDIR/NAME"`                    | the download's name: picks the unpacking tool   |
 * | `chmod -R +w "$unpackDir"`                  | read-only directories cannot make it fail       |
 * | `shopt -s dotglob`                          | globs match hidden names                        |
 * | `if [ $(ls [-A] "$unpackDir" | wc -l) != 1 ]` | the entries counted: all, or those not hidden |
 * | `fn=$(cd "$unpackDir" && echo *)` / `ls -A` | the entry taken: visible names (all with dotglob), or all |
 * | `mv "$unpackDir/$fn" "$out"`                | the entry renamed to `$out` (a file: into a new `$out`) |
 * | `mv "$unpackDir/$fn"/* "$out/"`             | its children moved into the `$out` made first   |
 */
import { statements } from './shell-script.js';

/** How a version of fetchzip puts the unpacked tree at `$out`. */
export interface FetchzipPlacement {
  stripRoot: boolean;
  /** which top-level names the single-entry check counts: `ls -A` all, `ls` those not starting with a dot; null: no check */
  count: 'all' | 'visible' | null;
  /** which names the entry is taken from: `ls -A` all, `echo *` the glob's (visible ones, all with dotglob) */
  pick: 'all' | 'glob';
  /** `shopt -s dotglob` */
  dotglob: boolean;
  /** `rename`: the entry (or the unpack directory) becomes `$out`; `contents`: its children are moved into a `$out` made first */
  move: 'rename' | 'contents';
}

/** What fetchzip's own postFetch says about the unpacking. */
export interface FetchzipShape extends FetchzipPlacement {
  /** the name the download is renamed to before unpackFile: it picks the unpacking tool */
  fileName: string;
  /** `chmod -R +w "$unpackDir"` runs before the tree is moved (nixpkgs since 2021) */
  writable: boolean;
  /** the script also ends with `chmod 755 "$out"` (nixpkgs since 2018; no effect on the NAR) */
  chmodOut: boolean;
}

/** A recognised fetchzip script: its shape, and the statements a user added after the placement. */
export interface FetchzipScript {
  shape: FetchzipShape;
  /** the user's statements (postFetch, extraPostFetch), empty for a plain fetchzip */
  user: string[];
}

/**
 * Today's nixpkgs fetchzip postFetch for a download renamed to `fileName`, with a user's
 * `postFetch` where nixpkgs puts it (the text the test package set's fetchzip writes).
 */
export function fetchzipScript(fileName: string, userPostFetch = '', stripRoot = true): string {
  return (
    `unpackDir="$TMPDIR/unpack"\nmkdir "$unpackDir"\ncd "$unpackDir"\n\nrenamed="$TMPDIR/${fileName}"\n` +
    `mv "$downloadedFile" "$renamed"\nunpackFile "$renamed"\nchmod -R +w "$unpackDir"\n` +
    (stripRoot
      ? `if [ $(ls -A "$unpackDir" | wc -l) != 1 ]; then
  echo "error: zip file must contain a single file or directory."
  echo "hint: Pass stripRoot=false; to fetchzip to assume flat list of files."
  exit 1
fi
fn=$(cd "$unpackDir" && ls -A)
if [ -f "$unpackDir/$fn" ]; then
  mkdir $out
fi
mv "$unpackDir/$fn" "$out"
`
      : 'mv "$unpackDir" "$out"\n') +
    `${userPostFetch}\n\nchmod 755 "$out"\n`
  );
}

const OUT = '"?\\$out"?';
const re = (s: string) => new RegExp(`^${s}$`);
const PATH_EXPORT = /^export PATH=\/nix\/store\/[0-9a-z]{32}-[^/\s"]+\/bin:\$PATH$/;
const MKDIR_OUT = re(`mkdir ${OUT}`);
const RENAMED = /^renamed="\$TMPDIR\/([^"$`\\/]+)"$/;
const COUNT = /^if \[ "?\$\(ls( -A)? "\$unpackDir" \| wc -l\)"? != "?1"? \]$/;
const PICK = /^fn=\$\(cd "\$unpackDir" && (echo \*|ls -A)\)$/;
const IS_FILE = /^if \[ -f "\$unpackDir\/\$fn" \]$/;
const MV_ENTRY = re(`mv "\\$unpackDir/\\$fn" ${OUT}`);
const MV_ENTRY_CONTENTS = re(`mv "\\$unpackDir/\\$fn"/\\* "?\\$out/"?`);
const MV_DIR = re(`mv "\\$unpackDir" ${OUT}`);
const MV_DIR_CONTENTS = re(`mv "\\$unpackDir"/\\* "?\\$out/"?`);
const CHMOD_OUT = re(`chmod 755 ${OUT}`);

/**
 * Recognises a fetchzip postFetch of any nixpkgs version: null when the script is not fetchzip's
 * (its unpacking statements are not there, in that order), else its shape and the user's part.
 */
export function readFetchzipScript(postFetch: string): FetchzipScript | null {
  const st = statements(postFetch);
  let i = 0;
  const take = (r: RegExp | string): RegExpExecArray | null => {
    const s = st[i];
    if (s === undefined) return null;
    const m = typeof r === 'string' ? (s === r ? ([s] as unknown as RegExpExecArray) : null) : r.exec(s);
    if (m) i++;
    return m;
  };
  let premade = false;
  for (;;) {
    if (take(PATH_EXPORT)) continue;
    if (take(MKDIR_OUT)) {
      premade = true;
      continue;
    }
    break;
  }
  if (!take('unpackDir="$TMPDIR/unpack"') || !take('mkdir "$unpackDir"') || !take('cd "$unpackDir"')) return null;
  const renamed = take(RENAMED);
  if (!renamed || !take('mv "$downloadedFile" "$renamed"') || !take('unpackFile "$renamed"')) return null;
  let writable = false;
  let dotglob = false;
  for (;;) {
    if (take('chmod -R +w "$unpackDir"') || take('chmod -R u+w "$unpackDir"')) {
      writable = true;
      continue;
    }
    if (take('shopt -s dotglob')) {
      dotglob = true;
      continue;
    }
    break;
  }
  const placement = readPlacement(take, premade, dotglob);
  if (!placement) return null;
  const user = st.slice(i);
  const chmodOut = user.length > 0 && CHMOD_OUT.test(user[user.length - 1]);
  if (chmodOut) user.pop();
  return { shape: { fileName: renamed[1], writable, chmodOut, ...placement }, user };
}

type Take = (r: RegExp | string) => RegExpExecArray | null;

function readPlacement(take: Take, premade: boolean, dotglob: boolean): FetchzipPlacement | null {
  if (take(MV_DIR)) return premade ? null : { stripRoot: false, count: null, pick: 'all', dotglob, move: 'rename' };
  if (take(MV_DIR_CONTENTS)) return premade ? { stripRoot: false, count: null, pick: 'glob', dotglob, move: 'contents' } : null;
  let count: FetchzipPlacement['count'] = null;
  const c = take(COUNT);
  if (c) {
    count = c[1] ? 'all' : 'visible';
    if (!take('then')) return null;
    while (take(/^echo (".*"|'.*')( >&2)?$/));
    if (!take('exit 1') || !take('fi')) return null;
  }
  const p = take(PICK);
  if (!p) return null;
  const pick = p[1] === 'ls -A' ? 'all' : 'glob';
  if (!take(IS_FILE) || !take('then')) return null;
  if (!premade) {
    // today's shape: a file goes into a new $out, anything else becomes $out
    if (!take(MKDIR_OUT) || !take('fi') || !take(MV_ENTRY)) return null;
    return { stripRoot: true, count, pick, dotglob, move: 'rename' };
  }
  // until 2017: $out exists; a file is moved into it, a directory's children are
  if (!take(MV_ENTRY) || !take('else') || !take(MV_ENTRY_CONTENTS) || !take('fi')) return null;
  return { stripRoot: true, count, pick, dotglob, move: 'contents' };
}
