/**
 * The documented settings against the code, so the two cannot drift: docs/config.md's defaults
 * table against the schema's defaults (every key listed), the `fetch.cache` table of
 * docs/binary-cache.md and the option tables of docs/fetch.md and docs/cli.md against the
 * same defaults, and every ```yaml example block of docs/config.md resolved by the resolver
 * every command uses, compared with the table of resolved values that follows it. No Nix.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { packageRoot } from '../src/config/defaults.js';
import { configSchema } from '../src/config/schema.js';
import { resolveSettings } from '../src/config/settings.js';

const doc = (name: string) => readFileSync(join(packageRoot(), 'docs', name), 'utf8');

/** The rows of the first table after `heading` (a line that starts it) whose header is `header`. */
function tableAfter(text: string, from: number, header: string): string[][] {
  const lines = text.slice(from).split('\n');
  const start = lines.findIndex((l) => l.startsWith(header));
  if (start < 0) throw new Error(`no table "${header}" after offset ${from}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** A cell that is a `literal` (alone, or followed by `, words` or `: words`), read as YAML; undefined for words. */
function literal(cell: string): { value: unknown } | undefined {
  const m = /^`([^`]*)`(?:$|[,:] )/.exec(cell);
  return m ? { value: parseYaml(m[1]) as unknown } : undefined;
}

/** The value at a dotted path. */
function at(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);
}

/** Every leaf key of the schema (records and arrays are leaves), dotted. */
function leafKeys(schema: z.ZodTypeAny, prefix = ''): string[] {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
    s = s instanceof z.ZodDefault ? s._def.innerType : s.unwrap();
  }
  if (!(s instanceof z.ZodObject)) return [prefix];
  return Object.entries(s.shape as Record<string, z.ZodTypeAny>).flatMap(([k, v]) => leafKeys(v, prefix ? `${prefix}.${k}` : k));
}

const defaults = configSchema.parse({});

/** Rows whose default is said in words: what each must match in the schema. */
const SAID_IN_WORDS: Record<string, (v: unknown) => void> = {
  variants: (v) => expect(Object.keys(v as object)).toEqual(['default', 'permissive']),
  'exclude.top': (v) => expect(v).toEqual(expect.arrayContaining(['buildPackages', 'pkgsCross'])),
  'exclude.anywhere': (v) => expect(v).toEqual(expect.arrayContaining(['lib', 'pkgs', 'callPackage'])),
  workers: (v) => expect(v).toBe(Math.max(1, Math.min(cpus().length, 8))),
  'fetch.kinds': (v) => expect(v).toBeUndefined(),
  'fetch.cache.level': (v) => expect(v).toBeUndefined(),
  'fetch.cache.secretKeyFile': (v) => expect(v).toBeUndefined(),
  // service.nixpkgs is null as a whole unless set, so its keys have no value of their own
  'service.nixpkgs.git': (v) => {
    expect(v).toBeUndefined();
    expect(defaults.service.nixpkgs).toBeNull();
  },
  'service.nixpkgs.branch': (v) => {
    expect(v).toBeUndefined();
    expect(configSchema.shape.service.parse({ nixpkgs: { git: 'x' } }).nixpkgs?.branch).toBe('master');
  },
};

describe('docs/config.md: the defaults table is the schema', () => {
  const text = doc('config.md');
  const rows = tableAfter(text, text.indexOf('## Defaults'), '| key | default |');

  test('every key of the schema is listed once, and nothing else', () => {
    const keys = rows.map((r) => r[0].replace(/`/g, ''));
    expect(new Set(keys).size).toBe(keys.length);
    expect([...keys].sort()).toEqual(leafKeys(configSchema).sort());
  });

  test.each(rows.map((r) => [r[0].replace(/`/g, ''), r[1]]))('%s: %s', (key, cell) => {
    const lit = literal(cell);
    if (lit) expect(at(defaults, key)).toEqual(lit.value);
    else {
      expect(SAID_IN_WORDS[key], `${key}: a default in words needs its check here`).toBeDefined();
      SAID_IN_WORDS[key](at(defaults, key));
    }
  });
});

describe('the other docs state the same defaults', () => {
  test('docs/binary-cache.md: the fetch.cache table', () => {
    const text = doc('binary-cache.md');
    const rows = tableAfter(text, text.indexOf('### Options'), '| key | default | meaning |');
    expect(rows.map((r) => r[0].replace(/`/g, '')).sort()).toEqual(leafKeys(configSchema.shape.fetch.removeDefault().shape.cache).sort());
    for (const [key, cell] of rows) {
      const k = `fetch.cache.${key.replace(/`/g, '')}`;
      const lit = literal(cell) ?? (/^\d+$/.test(cell) ? { value: Number(cell) } : undefined);
      if (lit) expect(at(defaults, k), k).toEqual(lit.value);
      else expect(at(defaults, k), k).toBeUndefined();
    }
  });

  /** `fodder fetch`'s options and the key each overrides. */
  const FETCH_FLAGS: Record<string, string> = {
    '--concurrency N': 'fetch.concurrency',
    '--per-host N': 'fetch.perHost',
    '--connect-timeout S': 'fetch.connectTimeoutSec',
    '--idle-timeout S': 'fetch.idleTimeoutSec',
    '--retries N': 'fetch.retries',
    '--retry-delay S': 'fetch.retryDelaySec',
    '--max-size MiB': 'fetch.maxSizeMb',
    '--db F': 'db',
  };
  test.each([
    ['fetch.md', '| option | default | meaning |', 1],
    ['cli.md', '| option | meaning | default |', 2],
  ] as const)('docs/%s: the options of fodder fetch', (name, header, column) => {
    const text = doc(name);
    const rows = tableAfter(text, text.indexOf('fodder fetch [--config F]'), header);
    let checked = 0;
    for (const row of rows) {
      const key = FETCH_FLAGS[row[0].replace(/`/g, '')];
      if (!key) continue;
      const lit = literal(row[column]) ?? { value: Number(row[column]) };
      expect(at(defaults, key), row[0]).toEqual(lit.value);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(name === 'fetch.md' ? 8 : 7);
  });
});

describe('docs/config.md: every example resolves to what the doc says', () => {
  const text = doc('config.md');
  const blocks = [...text.matchAll(/^```yaml example\n([\s\S]*?)^```\n/gm)];
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  test('there are examples', () => expect(blocks.length).toBeGreaterThanOrEqual(2));

  test.each(blocks.map((b, i) => [i + 1, b] as const))('example %i', (_, block) => {
    const dir = mkdtempSync(join(tmpdir(), 'fodder-config-doc-'));
    const file = join(dir, 'fodder.yaml');
    writeFileSync(file, block[1]);
    // a nix.bin the example names is made, with a stand-in nix-instantiate (it is checked for, not run)
    const bin = at(parseYaml(block[1]), 'nix.bin');
    if (typeof bin === 'string') {
      const stub = join(dir, bin, 'nix-instantiate');
      mkdirSync(dirname(stub), { recursive: true });
      writeFileSync(stub, '#!/bin/sh\nexit 1\n');
      chmodSync(stub, 0o755);
    }
    const settings = resolveSettings({ configFile: file });
    const rows = tableAfter(text, block.index + block[0].length, '| setting | resolved |');
    expect(rows.length).toBeGreaterThan(0);
    for (const [key, cell] of rows) {
      const shown = cell
        .replace(/^`|`$/g, '')
        .replace(/\bDIR\b/g, dir)
        .replace(/\bCWD\b/g, process.cwd());
      expect(at(settings, key.replace(/`/g, '')), key).toEqual(parseYaml(shown));
    }
  });
});
