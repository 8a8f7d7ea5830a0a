import { execa } from 'execa';
import { drvStoreHas, drvStoreUrl } from '../../src/graph/store-slots.js';

/** The drv store directory (of the worker slots) that holds `drvPath`. */
export function storeHolding(store: string, drvPath: string, slots = 4): string {
  for (let k = 0; k < slots; k++) {
    const dir = k === 0 ? store : `${store}-w${k}`;
    if (drvStoreHas(dir, drvPath)) return dir;
  }
  throw new Error(`${drvPath} is in no store slot of ${store}`);
}

/** `nix-store -qR` on a .drv in a drv store directory: its closure (the .drv files among it). */
export async function closureDrvs(store: string, drvPath: string): Promise<string[]> {
  const r = await execa('nix-store', ['--store', drvStoreUrl(store), '-qR', drvPath]);
  return r.stdout.split('\n').filter((p) => p.endsWith('.drv'));
}

export interface ShownDrv {
  outputs: Record<string, { path: string; hashAlgo?: string; hash?: string }>;
  env: Record<string, string>;
  inputDrvs: Record<string, string[]>;
  system: string;
}

/** Nix's own reading of .drv files in a drv store directory (`nix show-derivation`), in batches. */
export async function showDerivations(store: string, drvPaths: string[]): Promise<Record<string, ShownDrv>> {
  const out: Record<string, ShownDrv> = {};
  for (let i = 0; i < drvPaths.length; i += 200) {
    const r = await execa('nix', ['--extra-experimental-features', 'nix-command', 'show-derivation', '--store', drvStoreUrl(store), ...drvPaths.slice(i, i + 200)]);
    Object.assign(out, JSON.parse(r.stdout));
  }
  return out;
}
