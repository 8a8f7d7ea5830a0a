import { readFileSync } from 'node:fs';
import { FodderError, ErrorCode } from '../errors.js';
import { parseDrvPart, drvName } from './drv-parse.js';
import { readStoreText } from './store-slots.js';
import { fodFromDrv, isFixedOutput, type Mirrors } from './fod.js';
import type { DrvNode } from './types.js';

/** The text of a .drv: from a drv store directory (see store-slots.ts), or from the system store's /nix/store. */
function readDrvText(store: string | null, drvPath: string): string {
  return store === null ? readFileSync(drvPath, 'utf8') : readStoreText(store, drvPath);
}

/**
 * Reads the .drv closure of `roots` (following inputDrvs, as `nix-store -qR` does for .drv
 * files) and returns a node for every derivation not already in `known`, which it extends.
 */
export function readDrvClosure(
  roots: Iterable<string>, store: string | null, mirrors: Mirrors, known: Set<string>,
): DrvNode[] {
  const out: DrvNode[] = [];
  const stack: string[] = [];
  for (const r of roots) if (!known.has(r)) { known.add(r); stack.push(r); }
  while (stack.length) {
    const drvPath = stack.pop()!;
    let text: string;
    try {
      text = readDrvText(store, drvPath);
    } catch (err) {
      throw new FodderError(ErrorCode.DRV_PARSE, `cannot read ${drvPath} from ${store ?? 'the system store'}: ${(err as Error).message}`, { drvPath, store });
    }
    const drv = parseDrvPart(text, drvPath, false);
    const inputDrvs = drv.inputDrvs.map((i) => i.path);
    for (const i of inputDrvs) if (!known.has(i)) { known.add(i); stack.push(i); }
    const outputs: Record<string, string> = {};
    for (const o of drv.outputs) outputs[o.name] = o.path;
    const fod = isFixedOutput(drv) ? fodFromDrv(drvPath, drv, mirrors) : null;
    out.push({
      drvPath,
      name: drv.env.name ?? drvName(drvPath),
      system: drv.system,
      outputs,
      inputDrvs,
      fod,
      fodEnv: fod && (fod.kind !== 'url' || fod.postFetch) ? drv.env : null,
    });
  }
  return out;
}
