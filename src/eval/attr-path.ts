import { FodderError, ErrorCode } from '../errors.js';

const PLAIN = /^[A-Za-z_][A-Za-z0-9_'-]*$/;

/** `["a", "b.c"]` -> `a."b.c"`, the way Nix writes attribute paths. The root is `""`. */
export function formatAttrPath(path: readonly string[]): string {
  return path.map((n) => (PLAIN.test(n) ? n : JSON.stringify(n))).join('.');
}

/** Parses `a."b.c".d` into names; a clear error names the bad input. */
export function parseAttrPath(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  if (text.trim() === '') throw new FodderError(ErrorCode.USAGE, 'empty attribute path');
  while (i < text.length) {
    if (text[i] === '"') {
      let j = i + 1;
      let name = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) {
          name += text[j + 1];
          j += 2;
        } else {
          name += text[j];
          j++;
        }
      }
      if (j >= text.length) throw new FodderError(ErrorCode.USAGE, `unterminated quote in attribute path "${text}"`, { attr: text });
      out.push(name);
      i = j + 1;
    } else {
      let j = text.indexOf('.', i);
      if (j < 0) j = text.length;
      const name = text.slice(i, j);
      if (name === '') throw new FodderError(ErrorCode.USAGE, `empty name in attribute path "${text}"`, { attr: text });
      out.push(name);
      i = j;
    }
    if (i < text.length) {
      if (text[i] !== '.') throw new FodderError(ErrorCode.USAGE, `unexpected "${text[i]}" in attribute path "${text}"`, { attr: text });
      i++;
      if (i === text.length) throw new FodderError(ErrorCode.USAGE, `attribute path "${text}" ends with "."`, { attr: text });
    }
  }
  return out;
}
