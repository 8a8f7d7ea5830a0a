/**
 * Recognising nixpkgs' fetchzip in a FOD's environment: its own postFetch script (download,
 * unpackFile, stripRoot, `chmod 755 "$out"`) and whatever a user added to it. The crawl uses it
 * to classify (`archive`, `postFetch`), the archive fetcher to reproduce the unpacking.
 */
/** What fetchzip's own postFetch says about the unpacking. */
export interface FetchzipShape {
  /** the name the download is renamed to before unpackFile: it picks the unpacking tool */
  fileName: string;
  stripRoot: boolean;
}

const HEAD_RE = /^unpackDir="\$TMPDIR\/unpack"\nmkdir "\$unpackDir"\ncd "\$unpackDir"\n\nrenamed="\$TMPDIR\/([^"\n]*)"\nmv "\$downloadedFile" "\$renamed"\nunpackFile "\$renamed"\n(?:chmod -R \+w "\$unpackDir"\n)?/;
const STRIP = `if [ $(ls -A "$unpackDir" | wc -l) != 1 ]; then
  echo "error: zip file must contain a single file or directory."
  echo "hint: Pass stripRoot=false; to fetchzip to assume flat list of files."
  exit 1
fi
fn=$(cd "$unpackDir" && ls -A)
if [ -f "$unpackDir/$fn" ]; then
  mkdir $out
fi
mv "$unpackDir/$fn" "$out"
`;
const NO_STRIP = 'mv "$unpackDir" "$out"\n';

/**
 * nixpkgs' fetchzip postFetch for a download renamed to `fileName`, with a user's `postFetch`
 * where nixpkgs puts it: the text `fetchzipShape` recognises.
 */
export function fetchzipScript(fileName: string, userPostFetch = '', stripRoot = true): string {
  return `unpackDir="$TMPDIR/unpack"\nmkdir "$unpackDir"\ncd "$unpackDir"\n\nrenamed="$TMPDIR/${fileName}"\n`
    + `mv "$downloadedFile" "$renamed"\nunpackFile "$renamed"\nchmod -R +w "$unpackDir"\n`
    + (stripRoot ? STRIP : NO_STRIP) + `${userPostFetch}\n\nchmod 755 "$out"\n`;
}
const TAIL_RE = /^\s*chmod 755 "\$out"\s*$/;

/**
 * Recognises fetchzip's postFetch (nixpkgs' text, byte for byte, up to the renamed file name)
 * and whether anything was added to it.
 */
export function fetchzipShape(env: Record<string, string>): { ok: true; shape: FetchzipShape } | { ok: false; custom: boolean; reason: string } {
  const text = env.postFetch ?? '';
  const head = HEAD_RE.exec(text);
  if (!head) return { ok: false, custom: true, reason: 'postFetch is not fetchzip\'s script' };
  const rest = text.slice(head[0].length);
  let stripRoot: boolean;
  let user: string;
  if (rest.startsWith(STRIP)) { stripRoot = true; user = rest.slice(STRIP.length); }
  else if (rest.startsWith(NO_STRIP)) { stripRoot = false; user = rest.slice(NO_STRIP.length); }
  else return { ok: false, custom: true, reason: 'postFetch is not fetchzip\'s script' };
  if (!TAIL_RE.test(user)) return { ok: false, custom: true, reason: 'fetchzip with a custom postFetch' };
  if (env.stripRoot !== undefined && (env.stripRoot === '1') !== stripRoot) {
    return { ok: false, custom: false, reason: 'stripRoot in the environment disagrees with the postFetch script' };
  }
  return { ok: true, shape: { fileName: head[1], stripRoot } };
}
