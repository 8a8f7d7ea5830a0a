/**
 * The long-lived evaluator (a `nix repl` on a pipe): its replies, read from what real Nix prints.
 * Each case runs the Nix on PATH (2.8 here; the 2.26 run of the crawl tests covers the other
 * shape), and the message parser is also checked on the shapes of both versions' error output.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { NixSession, nixString, replMessage, type SessionSpec } from '../src/eval/nix-session.js';
import { tempDir, writePackageSet } from './helpers/cli.js';

const EVALUATOR = resolve('nix/evaluator.nix');

function spec(set: string, over: Partial<SessionSpec> = {}): SessionSpec {
  const dir = tempDir('fodder-session-');
  mkdirSync(join(dir, 'store'));
  return {
    nixpkgs: set,
    system: 'x86_64-linux',
    config: {},
    configNix: null,
    overlays: [],
    exhaustive: false,
    store: join(dir, 'store'),
    scratch: dir,
    evaluator: EVALUATOR,
    timeoutMs: 60_000,
    memoryMb: 2048,
    ...over,
  };
}

const SET = `{ system, config ? {}, overlays ? [] }: rec {
  ok = derivation { name = "ok"; inherit system; builder = "/bin/sh"; };
  missing = ok.noSuchAttr;
  aborts = abort "gone for good";
  throws = throw "caught by tryEval";
  deep = builtins.toJSON (builtins.foldl' (x: y: [ x ]) [ ] (builtins.genList (x: x) 1000000));
  "odd \\"name\\" \\\${x}\\n" = ok;
}`;

describe('the evaluator session', () => {
  it('answers values, caught and uncatchable errors in order, and survives all but a crash', async () => {
    const set = writePackageSet(SET);
    const s = new NixSession(spec(set));
    expect(await s.start()).toEqual({ ok: true });
    const paths = [['ok'], ['missing'], ['aborts'], ['throws'], ['odd "name" ${x}\n'], ['ok'], ['deep']];
    const file = join(tempDir(), 'paths.json');
    writeFileSync(file, JSON.stringify(paths));
    s.bind('A', `W.ask ${nixString(file)}`);
    const seen: number[] = [];
    const a = await s.ask(
      [0, 1, 2, 3, 4, 5].map((i) => `A.one ${i}`),
      (i) => seen.push(i),
    );
    expect(a.stopped).toBeNull();
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    const [ok, missing, aborts, throws, odd, again] = a.replies;
    expect(ok.ok && JSON.parse(ok.value)).toMatchObject({ s: 'drv', d: expect.stringMatching(/^\/nix\/store\/.*-ok\.drv$/) });
    expect(missing).toEqual({ ok: false, message: expect.stringContaining("attribute 'noSuchAttr' missing") });
    // Nix's message, whatever the version: its own frames and the repl's are not kept
    expect(missing.ok ? '' : missing.message).toMatch(/^error: attribute 'noSuchAttr' missing/);
    expect(missing.ok ? '' : missing.message).not.toContain('«string»');
    expect(missing.ok ? '' : missing.message).not.toContain('evaluator.nix');
    expect(aborts).toEqual({ ok: false, message: expect.stringContaining("evaluation aborted with the following error message: 'gone for good'") });
    expect(throws.ok && JSON.parse(throws.value)).toEqual({ s: 'error', e: 'value' });
    expect(odd).toEqual(ok);
    expect(again).toEqual(ok);
    // a batch of records in one request; one uncatchable error in it fails the whole request
    const batch = await s.ask(['A.batch 4 6', 'A.batch 0 2']);
    expect(batch.replies[0].ok && JSON.parse(batch.replies[0].value)).toEqual([JSON.parse(ok.ok ? ok.value : ''), JSON.parse(ok.ok ? ok.value : '')]);
    expect(batch.replies[1]).toEqual({ ok: false, message: expect.stringContaining("attribute 'noSuchAttr' missing") });
    const explained = await s.ask(['A.explain 3']);
    expect(explained.replies[0]).toEqual({ ok: false, message: expect.stringContaining('caught by tryEval') });

    // a C stack overflow ends the repl on every Nix version: the request it was on is the culprit
    const crash = await s.ask(['A.one 0', 'A.one 6', 'A.one 0']);
    expect(crash.replies).toHaveLength(1);
    expect(crash.stopped).toMatchObject({ reason: 'died', message: expect.stringMatching(/stack overflow/) });
    expect(s.alive).toBe(false);
  });

  it('says why a package set does not load', async () => {
    const broken = writePackageSet('{ system, config ? {}, overlays ? [] }: throw "this set refuses ${system}"');
    const r = await new NixSession(spec(broken)).start();
    expect(r).toEqual({ ok: false, message: expect.stringContaining('this set refuses x86_64-linux') });
    const syntax = writePackageSet('{ system, config ? {}, overlays ? [] }: { a = ; }');
    const r2 = await new NixSession(spec(syntax)).start();
    expect(r2.ok).toBe(false);
    expect(r2.ok ? '' : r2.message).toMatch(/syntax error/);
  });

  it('kills a request past the time cap and names the cap', async () => {
    // reads a named pipe nobody writes: it never ends, and takes no memory (a long computation
    // would meet the memory cap first)
    const set = writePackageSet(`{ system, config ? {}, overlays ? [] }: { slow = builtins.readFile ./fifo; }`);
    execFileSync('mkfifo', [join(set, 'fifo')]);
    const s = new NixSession(spec(set, { timeoutMs: 1500 }));
    expect(await s.start()).toEqual({ ok: true });
    const file = join(tempDir(), 'paths.json');
    writeFileSync(file, JSON.stringify([['slow']]));
    s.bind('A', `W.ask ${nixString(file)}`);
    const r = await s.ask(['A.one 0']);
    expect(r.stopped).toEqual({ reason: 'timeout', message: 'evaluation passed the time cap (1500 ms)' });
  });

  it('writes attribute names as Nix string literals', () => {
    expect(nixString('a"b\\c${d}\n\t')).toBe('"a\\"b\\\\c\\${d}\\n\\t"');
  });
});

describe("reading Nix's error messages", () => {
  const ev = '/opt/fodder/nix/evaluator.nix';
  it("keeps Nix 2.8's message and drops the excerpt of the repl's own input", () => {
    const out = [
      'nix-repl> A.one 1',
      "error: attribute 'noSuchAttr' missing",
      '',
      '       at «string»:1:1:',
      '',
      '            1| A.one 1',
      '             | ^',
      '',
    ];
    expect(replMessage(out, ev)).toBe("error: attribute 'noSuchAttr' missing");
    const inSet = [
      "error: attribute 'x' missing",
      '',
      '       at /set/default.nix:4:19:',
      '',
      '            3|',
      '            4|   b = a.x;',
      '             |         ^',
    ];
    expect(replMessage(inSet, ev)).toBe(inSet.join('\n'));
  });

  it("reads Nix 2.26's frames: drops those of the repl and the evaluator, keeps the package set's and the message", () => {
    const out = [
      'error:',
      "       … while calling the 'toJSON' builtin",
      `         at ${ev}:44:12:`,
      '           43|',
      '           44|   record = path: builtins.toJSON (walkOne path);',
      '             |            ^',
      '',
      "       … while evaluating the attribute 'drvPath'",
      '         at /set/pkgs/foo.nix:3:1:',
      '            3| x',
      '             | ^',
      '',
      "       … while calling the 'throw' builtin",
      '         at «string»:1:1:',
      '            1| A.explain 5',
      '             | ^',
      '',
      "       (stack trace truncated; use '--show-trace' to show the full, detailed trace)",
      '',
      '       error: Package ‘foo’ is marked as broken, refusing to evaluate.',
    ];
    const m = replMessage(out, ev);
    expect(m).toContain("… while evaluating the attribute 'drvPath'");
    expect(m).toContain('/set/pkgs/foo.nix:3:1');
    expect(m).toMatch(/error: Package ‘foo’ is marked as broken, refusing to evaluate\.$/);
    expect(m).not.toContain('«string»');
    expect(m).not.toContain(ev);
    expect(m).not.toContain('stack trace truncated');
    const plain = [
      '',
      'nix-repl> A.one 3',
      'error:',
      "       … while calling the 'throw' builtin",
      '         at «string»:1:1:',
      '            1| throw "hello world"',
      '             | ^',
      '',
      '       error: hello world',
      '',
    ];
    expect(replMessage(plain, ev)).toBe('error: hello world');
  });
});
