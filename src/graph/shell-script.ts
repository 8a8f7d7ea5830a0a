/**
 * Reading a fetcher's shell snippet (a FOD's `postFetch`) as a list of statements, so that a
 * fetcher is recognised by what its script does, not by one version's exact text: indentation,
 * blank lines, comments, line continuations and `;` separators make no difference.
 */

/**
 * The statements of a shell snippet, in order: split at newlines and `;` outside quotes and
 * `$(...)`, with comments dropped, line continuations joined and runs of unquoted blanks
 * collapsed to one space. `if [ … ]; then` gives two statements, `if [ … ]` and `then`.
 */
export function statements(script: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | null = null;
  let depth = 0; // open $( or ( outside quotes
  const flush = () => {
    const t = cur.trim();
    if (t !== '') out.push(t);
    cur = '';
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i];
    if (quote === "'") {
      cur += c;
      if (c === "'") quote = null;
      continue;
    }
    if (c === '\\') {
      const next = script[i + 1];
      if (next === '\n') {
        // a continuation: a blank
        i++;
        if (cur !== '' && !cur.endsWith(' ')) cur += ' ';
        continue;
      }
      cur += c + (next ?? '');
      i++;
      continue;
    }
    if (quote === '"') {
      cur += c;
      if (c === '"') quote = null;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      cur += c;
      continue;
    }
    if (c === '(') depth++;
    if (c === ')' && depth > 0) depth--;
    if (depth === 0 && (c === '\n' || c === ';')) {
      flush();
      continue;
    }
    if (c === '#' && (cur === '' || /\s$/.test(cur))) {
      while (i + 1 < script.length && script[i + 1] !== '\n') i++;
      continue;
    }
    if (c === ' ' || c === '\t') {
      if (cur !== '' && !cur.endsWith(' ')) cur += ' ';
      continue;
    }
    cur += c;
  }
  flush();
  return out;
}

/**
 * The words of one simple command after quote removal (`'a b'` and `"a b"` are one word `a b`);
 * parameter expansions stay as written (`"$out"` is the word `$out`). Null when the statement
 * has anything this reader does not take apart (command substitution, globs, redirections,
 * pipes, variable assignments with quotes in odd places are all refused).
 */
export function commandWords(statement: string): string[] | null {
  const words: string[] = [];
  let cur: string | null = null;
  for (let i = 0; i < statement.length; i++) {
    const c = statement[i];
    if (c === ' ') {
      if (cur !== null) words.push(cur);
      cur = null;
      continue;
    }
    cur ??= '';
    if (c === "'") {
      const end = statement.indexOf("'", i + 1);
      if (end < 0) return null;
      cur += statement.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < statement.length && statement[j] !== '"'; j++) {
        const d = statement[j];
        if (d === '`' || (d === '$' && statement[j + 1] === '(')) return null;
        if (d === '\\' && '"\\$`'.includes(statement[j + 1] ?? '')) {
          j++;
          cur += statement[j];
          continue;
        }
        cur += d;
      }
      if (j >= statement.length) return null;
      i = j;
    } else if (c === '\\') {
      cur += statement[i + 1] ?? '';
      i++;
    } else if ('|&<>`*?[(){}'.includes(c) || (c === '$' && statement[i + 1] === '(')) {
      return null;
    } else {
      cur += c;
    }
  }
  if (cur !== null) words.push(cur);
  return words;
}
