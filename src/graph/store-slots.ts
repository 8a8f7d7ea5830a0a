import { existsSync } from 'node:fs';

/**
 * Where the crawl's .drv files live. Each worker thread writes into a chroot store of its own
 * (Nix serialises writers on one store database): slot 0 is the configured store `DIR`,
 * slot k > 0 is `DIR-wk`. The crawl writes them; the nix fetcher reads them.
 */
export function slotStorePath(store: string, slot: number): string {
  return slot === 0 ? store : `${store}-w${slot}`;
}

/** Every store slot of a crawl's `--store` that exists on disk, slot 0 first. */
export function crawlDrvStores(store: string): string[] {
  const out: string[] = [];
  if (existsSync(store)) out.push(store);
  for (let slot = 1; existsSync(slotStorePath(store, slot)); slot++) out.push(slotStorePath(store, slot));
  return out;
}
