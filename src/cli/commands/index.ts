import type { Command } from 'commander';

/** A module of commands: the names it registers and how to load its `register` function. */
export interface CommandModule {
  names: readonly string[];
  load: () => Promise<(program: Command) => void>;
}

/**
 * Every command, one module each, in the order `fodder --help` lists them. A module is loaded
 * only when one of its commands runs, or when all are listed (`fodder --help`, an unknown
 * name): `fodder bundle create` does not load the crawler, the report or the service.
 */
export const commands: readonly CommandModule[] = [
  { names: ['crawl'], load: async () => (await import('./crawl.js')).registerCrawl },
  { names: ['sources', 'fods', 'attrs'], load: async () => (await import('./queries.js')).registerQueries },
  { names: ['fetch'], load: async () => (await import('./fetch.js')).registerFetch },
  { names: ['verify'], load: async () => (await import('./verify.js')).registerVerify },
  { names: ['report'], load: async () => (await import('./report.js')).registerReport },
  { names: ['keygen'], load: async () => (await import('./keygen.js')).registerKeygen },
  { names: ['serve'], load: async () => (await import('./serve.js')).registerServe },
  { names: ['gc'], load: async () => (await import('./gc.js')).registerGc },
  { names: ['manifest', 'bundle'], load: async () => (await import('./bundle.js')).registerBundle },
  // hidden: the service's own (fodder serve starts it for each job)
  { names: ['job'], load: async () => (await import('./job.js')).registerJob },
];
