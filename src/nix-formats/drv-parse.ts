import { FodderError, ErrorCode } from '../errors.js';

/** A parsed .drv file. */
export interface Derivation {
  outputs: { name: string; path: string; hashAlgo: string; hash: string }[];
  inputDrvs: { path: string; outputs: string[] }[];
  inputSrcs: string[];
  system: string;
  builder: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Parses the ATerm text of a .drv file:
 * `Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])`.
 * Hand-written single pass over the string: .drv files are parsed by the ten thousand.
 */
export function parseDrv(text: string, origin = '<drv>'): Derivation {
  return parseDrvPart(text, origin, true);
}

/**
 * Parses outputs, inputs and the system always; the rest (builder, args, env) only when `full`
 * is true or the derivation is fixed-output. Most derivations of a closure are not FODs, and their
 * environments hold the largest strings of the file.
 */
export function parseDrvPart(text: string, origin: string, full: boolean): Derivation {
  const p = new Parser(text, origin);
  p.expect('Derive(');
  const outputs = p.list(() => {
    p.expect('(');
    const name = p.str();
    p.expect(',');
    const path = p.str();
    p.expect(',');
    const hashAlgo = p.str();
    p.expect(',');
    const hash = p.str();
    p.expect(')');
    return { name, path, hashAlgo, hash };
  });
  p.expect(',');
  const inputDrvs = p.list(() => {
    p.expect('(');
    const path = p.str();
    p.expect(',');
    const outs = p.list(() => p.str());
    p.expect(')');
    return { path, outputs: outs };
  });
  p.expect(',');
  const inputSrcs = p.list(() => p.str());
  p.expect(',');
  const system = p.str();
  const fixed = outputs.length === 1 && outputs[0].hash !== '';
  if (!full && !fixed) return { outputs, inputDrvs, inputSrcs, system, builder: '', args: [], env: {} };
  p.expect(',');
  const builder = p.str();
  p.expect(',');
  const args = p.list(() => p.str());
  p.expect(',');
  const env: Record<string, string> = {};
  p.list(() => {
    p.expect('(');
    const k = p.str();
    p.expect(',');
    const v = p.str();
    p.expect(')');
    env[k] = v;
    return null;
  });
  p.expect(')');
  return { outputs, inputDrvs, inputSrcs, system, builder, args, env };
}

class Parser {
  pos = 0;
  constructor(
    readonly s: string,
    readonly origin: string,
  ) {}

  fail(what: string): never {
    throw new FodderError(ErrorCode.DRV_PARSE, `${this.origin}: malformed derivation at offset ${this.pos}: expected ${what}`, {
      file: this.origin,
      offset: this.pos,
    });
  }

  expect(lit: string): void {
    if (!this.s.startsWith(lit, this.pos)) this.fail(JSON.stringify(lit));
    this.pos += lit.length;
  }

  list<T>(item: () => T): T[] {
    this.expect('[');
    const out: T[] = [];
    if (this.s.charCodeAt(this.pos) === 93 /* ] */) {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(item());
      const c = this.s.charCodeAt(this.pos);
      if (c === 44 /* , */) {
        this.pos++;
        continue;
      }
      if (c === 93) {
        this.pos++;
        return out;
      }
      this.fail('"," or "]"');
    }
  }

  str(): string {
    if (this.s.charCodeAt(this.pos) !== 34 /* " */) this.fail('a string');
    const start = ++this.pos;
    // fast path: no escapes
    let i = start;
    const s = this.s;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 34) {
        this.pos = i + 1;
        return s.slice(start, i);
      }
      if (c === 92 /* \ */) break;
      if (Number.isNaN(c)) {
        this.pos = i;
        this.fail('end of string');
      }
      i++;
    }
    let out = s.slice(start, i);
    for (;;) {
      const c = s.charCodeAt(i);
      if (Number.isNaN(c)) {
        this.pos = i;
        this.fail('end of string');
      }
      if (c === 34) {
        this.pos = i + 1;
        return out;
      }
      if (c === 92) {
        const n = s[i + 1];
        out += n === 'n' ? '\n' : n === 'r' ? '\r' : n === 't' ? '\t' : n;
        i += 2;
        continue;
      }
      out += s[i];
      i++;
    }
  }
}

/** `/nix/store/<hash>-<name>.drv` -> `<name>` */
export function drvName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf('/') + 1);
  const name = base.slice(33);
  return name.endsWith('.drv') ? name.slice(0, -4) : name;
}
