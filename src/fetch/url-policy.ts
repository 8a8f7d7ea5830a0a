import type { Outcome } from './outcome.js';

/** The only schemes fodder downloads from. A package set must never make it read local files. */
export const ALLOWED_SCHEMES: ReadonlySet<string> = new Set(['http:', 'https:', 'ftp:']);

export type UrlCheck = { ok: true; url: URL } | { ok: false; outcome: Outcome; message: string };

/** Parses a URL and applies the scheme policy. */
export function checkUrl(text: string, via: string | null = null): UrlCheck {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, outcome: 'bad-url', message: `not a valid URL: ${text}${via ? ` (redirect from ${via})` : ''}` };
  }
  if (!ALLOWED_SCHEMES.has(url.protocol)) {
    const what =
      url.protocol === 'mirror:'
        ? `unexpanded mirror:// URL (site "${url.hostname}" is not in the package set's mirrors list)`
        : `scheme ${url.protocol.replace(/:$/, '')}:// refused (only http, https and ftp are fetched)`;
    return { ok: false, outcome: 'refused-scheme', message: via ? `redirect to ${text} refused: ${what}` : `${text}: ${what}` };
  }
  return { ok: true, url };
}

/** The key the per-host limit counts by. */
export function hostKey(text: string): string {
  try {
    return new URL(text).host || text;
  } catch {
    return text;
  }
}
