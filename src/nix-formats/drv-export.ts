import { narFromBuffer, narString } from './nar.js';
import { parseDrv } from './drv-parse.js';

/** A .drv file as the database keeps it: its store path and its text. */
export interface DrvText {
  drvPath: string;
  text: string;
}

/** `nix-store --export`'s marker after each path's NAR ("NIXE"). */
const EXPORT_MAGIC = 0x4558494e;

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n % 2 ** 32, 0);
  b.writeUInt32LE(Math.floor(n / 2 ** 32), 4);
  return b;
}

/** A store path ready for `nix-store --import`. */
export interface ImportEntry {
  path: string;
  nar: Uint8Array;
  references: string[];
}

/**
 * A .drv as an import entry: the NAR of its text, and the store paths Nix registers as its
 * references when it writes one (its input derivations and its input sources).
 */
export function drvEntry(d: DrvText): ImportEntry {
  const drv = parseDrv(d.text, d.drvPath);
  const references = [...new Set([...drv.inputDrvs.map((i) => i.path), ...drv.inputSrcs])].sort();
  return { path: d.drvPath, nar: narFromBuffer(Buffer.from(d.text, 'utf8')), references };
}

/**
 * Store paths in the format of `nix-store --export`, for `nix-store --import`: per path the
 * number 1, its NAR, the magic, the path, its references, an empty deriver and no signature;
 * then 0. `entries` must come dependencies first (Nix registers each path as it reads it, and a
 * path's references must be valid by then). Nix takes the paths as given: a .drv's store path
 * is fixed by its text, and these texts are only ever the ones Nix wrote.
 */
export function exportArchive(entries: readonly ImportEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(u64(1), Buffer.from(e.nar.buffer, e.nar.byteOffset, e.nar.byteLength), u64(EXPORT_MAGIC), narString(e.path), u64(e.references.length));
    for (const r of [...e.references].sort()) parts.push(narString(r));
    parts.push(narString(''), u64(0));
  }
  parts.push(u64(0));
  return Buffer.concat(parts);
}

/**
 * Orders a closure dependencies first: every derivation after all of its inputs. `inputsOf`
 * gives a derivation's input derivations (all of them in the closure).
 */
export function dependenciesFirst(paths: Iterable<string>, inputsOf: (drvPath: string) => readonly string[]): string[] {
  const out: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  for (const root of paths) {
    if (state.has(root)) continue;
    // iterative depth-first search: a path is emitted once every input is
    const stack: [string, number][] = [[root, 0]];
    state.set(root, 'open');
    while (stack.length) {
      const top = stack[stack.length - 1];
      const inputs = inputsOf(top[0]);
      if (top[1] < inputs.length) {
        const next = inputs[top[1]++];
        if (!state.has(next)) {
          state.set(next, 'open');
          stack.push([next, 0]);
        }
        continue;
      }
      stack.pop();
      state.set(top[0], 'done');
      out.push(top[0]);
    }
  }
  return out;
}
