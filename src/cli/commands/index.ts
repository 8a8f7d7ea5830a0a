import type { Command } from 'commander';
import { registerCrawl } from './crawl.js';
import { registerQueries } from './queries.js';
import { registerFetch } from './fetch.js';
import { registerVerify } from './verify.js';
import { registerReport } from './report.js';
import { registerKeygen } from './keygen.js';
import { registerServe } from './serve.js';
import { registerGc } from './gc.js';
import { registerBundle } from './bundle.js';
import { registerJob } from './job.js';

/** Every command, one line each, in the order `fodder --help` lists them. */
export const commands: ((program: Command) => void)[] = [
  registerCrawl,
  registerQueries,
  registerFetch,
  registerVerify,
  registerReport,
  registerKeygen,
  registerServe,
  registerGc,
  registerBundle,
  // hidden: the service's own (fodder serve starts it for each job)
  registerJob,
];
