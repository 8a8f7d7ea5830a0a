import { readFileSync } from 'node:fs';
import { FodderError, ErrorCode } from '../errors.js';
import { parseDrvPart, drvName } from './drv-parse.js';
import { fodFromDrv, isFixedOutput, type Mirrors } from './fod.js';
import type { DrvNode } from './types.js';

/** Where .drv files of a store live on disk: `<chroot>/nix/store/...` or `/nix/store/...`. */
export function storeFile(storeRoot: string | null, storePath: string): string {
  return storeRoot ? storeRoot + storePath : storePath;
}

/**
 * Reads the .drv closure of `roots` (following inputDrvs, as `nix-store -qR` does for .drv
 * files) and returns a node for every derivation not already in `known`, which it extends.
 */
export function readDrvClosure(
  roots: Iterable<string>, storeRoot: string | null, mirrors: Mirrors, known: Set<string>,
): DrvNode[] {
  const out: DrvNode[] = [];
  const stack: string[] = [];
  for (const r of roots) if (!known.has(r)) { known.add(r); stack.push(r); }
  while (stack.length) {
    const drvPath = stack.pop()!;
    const file = storeFile(storeRoot, drvPath);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new FodderError(ErrorCode.DRV_PARSE, `cannot read ${file}: ${(err as Error).message}`, { drvPath });
    }
    const drv = parseDrvPart(text, file, false);
    const inputDrvs = drv.inputDrvs.map((i) => i.path);
    for (const i of inputDrvs) if (!known.has(i)) { known.add(i); stack.push(i); }
    const outputs: Record<string, string> = {};
    for (const o of drv.outputs) outputs[o.name] = o.path;
    out.push({
      drvPath,
      name: drv.env.name ?? drvName(drvPath),
      system: drv.system,
      outputs,
      inputDrvs,
      fod: isFixedOutput(drv) ? fodFromDrv(drvPath, drv, mirrors) : null,
      fodEnv: isFixedOutput(drv) ? drv.env : null,
    });
  }
  return out;
}
