import { execa } from 'execa';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
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
  builder: string;
  args: string[];
}

/** What `nix show-derivation` prints for one derivation, Nix 2.8 or 2.26. */
interface ShownRaw extends Omit<ShownDrv, 'outputs' | 'inputDrvs'> {
  outputs: Record<string, { path: string; method?: string; hashAlgo?: string; hash?: string }>;
  inputDrvs: Record<string, string[] | { outputs: string[] }>;
}

/** The prefix Nix 2.8 put on an output's `hashAlgo` for each ingestion method Nix 2.26 names apart. */
const METHOD_PREFIX: Record<string, string> = { flat: '', nar: 'r:', text: 'text:', git: 'git:' };

/**
 * `nix show-derivation` JSON in Nix 2.8's shape, whichever Nix printed it. Nix 2.26 writes a
 * fixed output's method apart (`"method": "nar", "hashAlgo": "sha256"` where 2.8 wrote
 * `"hashAlgo": "r:sha256"`) and an input derivation as `{ "outputs": [...], "dynamicOutputs": {} }`
 * where 2.8 wrote the list of outputs.
 */
export function shownAs28(raw: Record<string, ShownRaw>): Record<string, ShownDrv> {
  const out: Record<string, ShownDrv> = {};
  for (const [drv, d] of Object.entries(raw)) {
    const outputs: ShownDrv['outputs'] = {};
    for (const [name, { method, ...o }] of Object.entries(d.outputs)) {
      if (method !== undefined && !(method in METHOD_PREFIX)) throw new Error(`${drv}: output ${name} has an unknown method "${method}"`);
      outputs[name] = method !== undefined && o.hashAlgo !== undefined ? { ...o, hashAlgo: METHOD_PREFIX[method] + o.hashAlgo } : o;
    }
    const inputDrvs = Object.fromEntries(Object.entries(d.inputDrvs).map(([p, i]) => [p, Array.isArray(i) ? i : i.outputs]));
    out[drv] = { ...d, outputs, inputDrvs };
  }
  return out;
}

/** Nix's own reading of .drv files in a store (`nix show-derivation --store STORE`), in batches, in Nix 2.8's shape. */
export async function showDerivationsIn(storeUrl: string, drvPaths: string[]): Promise<Record<string, ShownDrv>> {
  const out: Record<string, ShownDrv> = {};
  for (let i = 0; i < drvPaths.length; i += 200) {
    const r = await execa('nix', ['--extra-experimental-features', 'nix-command', 'show-derivation', '--store', storeUrl, ...drvPaths.slice(i, i + 200)]);
    Object.assign(out, shownAs28(JSON.parse(r.stdout) as Record<string, ShownRaw>));
  }
  return out;
}

/** The same for .drv files in a drv store directory (of the crawl's worker slots). */
export function showDerivations(store: string, drvPaths: string[]): Promise<Record<string, ShownDrv>> {
  return showDerivationsIn(drvStoreUrl(store), drvPaths);
}

/**
 * `nix-store --store STORE --option K V … --realise PATHS…` in a chroot store: how the tests let
 * Nix judge a mirror (a substituter, a hashed mirror, the keys it trusts), with no network beyond
 * what `options` names. `connect-timeout` is 2 s unless given.
 */
export function realiseIn(store: string, paths: string[], options: Record<string, string>, timeout = 120_000): SpawnSyncReturns<string> {
  const all = { 'connect-timeout': '2', ...options };
  return spawnSync('nix-store', ['--store', store, ...Object.entries(all).flatMap(([k, v]) => ['--option', k, v]), '--realise', ...paths], {
    encoding: 'utf8',
    timeout,
  });
}
