import { readFileSync } from 'node:fs';
import { FodderError, ErrorCode } from '../errors.js';
import { parseDrvPart, drvName } from '../nix-formats/drv-parse.js';
import { readStoreSource, readStoreText } from './store-slots.js';
import { fodFromDrv, isFixedOutput, needsEnv, type Mirrors } from './fod.js';
import type { DrvNode, StoreSource } from './types.js';

/** What readDrvClosure found that `graph` did not know: derivations, and input sources. */
export interface ReadClosure {
  drvs: DrvNode[];
  sources: StoreSource[];
}

/**
 * Where .drv files are read: a drv store directory (a binary-cache store, see store-slots.ts), or
 * a chroot store (`{ chroot: DIR }`, the files under `DIR/nix/store`), whose input sources are
 * not read (their references are in its database): what on-demand targets need is their FODs.
 */
export type DrvSource = string | { chroot: string };

/**
 * Reads the .drv closure of `roots` from a drv store directory (see store-slots.ts), following
 * inputDrvs as `nix-store -qR` does for .drv files, and adds to `into` a node for every
 * derivation not already in `graph`, and every input source (with the sources it refers to)
 * the graph has not seen, adding each to the graph as it is read.
 */
export function readDrvClosure(roots: Iterable<string>, from: DrvSource, mirrors: Mirrors, graph: DrvGraph, into: ReadClosure): void {
  const store = typeof from === 'string' ? from : from.chroot;
  const readText = typeof from === 'string' ? (p: string) => readStoreText(from, p) : (p: string) => readFileSync(from.chroot + p, 'utf8');
  const queued = new Set<string>();
  const stack: string[] = [];
  const visit = (p: string) => {
    if (!graph.has(p) && !queued.has(p)) {
      queued.add(p);
      stack.push(p);
    }
  };
  const sources: string[] = [];
  const visitSource = (p: string) => {
    if (!graph.hasSource(p)) {
      graph.addSource(p);
      sources.push(p);
    }
  };
  for (const r of roots) visit(r);
  while (stack.length) {
    const drvPath = stack.pop()!;
    let text: string;
    try {
      text = readText(drvPath);
    } catch (err) {
      throw new FodderError(ErrorCode.DRV_PARSE, `cannot read ${drvPath} from ${store}: ${(err as Error).message}`, { drvPath, store });
    }
    const drv = parseDrvPart(text, drvPath, false);
    const inputDrvs = drv.inputDrvs.map((i) => i.path);
    for (const i of inputDrvs) visit(i);
    if (typeof from === 'string') for (const s of drv.inputSrcs) visitSource(s);
    const outputs: Record<string, string> = {};
    for (const o of drv.outputs) outputs[o.name] = o.path;
    const fod = isFixedOutput(drv) ? fodFromDrv(drvPath, drv, mirrors) : null;
    const node: DrvNode = {
      drvPath,
      name: drv.env.name ?? drvName(drvPath),
      system: drv.system,
      outputs,
      inputDrvs,
      fod,
      fodEnv: fod && needsEnv(fod) ? drv.env : null,
      text,
      inputSrcs: drv.inputSrcs,
    };
    graph.add([node]);
    into.drvs.push(node);
  }
  while (sources.length) {
    const path = sources.pop()!;
    let src: StoreSource;
    try {
      src = readStoreSource(store, path);
    } catch (err) {
      throw new FodderError(ErrorCode.DRV_PARSE, `cannot read the input source ${path} from ${store}: ${(err as Error).message}`, { path, store });
    }
    for (const r of src.references) visitSource(r);
    into.sources.push(src);
  }
}

/**
 * The derivation graph one worker thread has read so far: each .drv's inputs and whether it is
 * fixed-output. Every .drv in the closure of a drvPath the thread reported is in it (the thread
 * read it then, or earlier), so closures can be walked again without reading a file, and no
 * .drv is read twice.
 */
export class DrvGraph {
  private readonly inputs = new Map<string, string[]>();
  private readonly fods = new Set<string>();
  private readonly sources = new Set<string>();

  /** True when this thread has read the input source `path` already. */
  hasSource(path: string): boolean {
    return this.sources.has(path);
  }

  addSource(path: string): void {
    this.sources.add(path);
  }

  has(drvPath: string): boolean {
    return this.inputs.has(drvPath);
  }

  add(nodes: Iterable<DrvNode>): void {
    for (const n of nodes) {
      this.inputs.set(n.drvPath, n.inputDrvs);
      if (n.fod) this.fods.add(n.drvPath);
    }
  }

  /** Every derivation and every FOD in the closure of `roots`. */
  closure(roots: Iterable<string>): { drvs: string[]; fods: string[] } {
    const seen = new Set<string>();
    const stack: string[] = [];
    for (const r of roots)
      if (!seen.has(r)) {
        seen.add(r);
        stack.push(r);
      }
    const fods: string[] = [];
    while (stack.length) {
      const p = stack.pop()!;
      if (this.fods.has(p)) fods.push(p);
      const inputs = this.inputs.get(p);
      if (inputs === undefined) throw new Error(`${p} was never read by this thread`);
      for (const i of inputs)
        if (!seen.has(i)) {
          seen.add(i);
          stack.push(i);
        }
    }
    return { drvs: [...seen], fods };
  }
}
