import type { Command } from 'commander';
import { registerCrawl } from './crawl.js';
import { registerQueries } from './queries.js';

/** Every command, one line each. */
export const commands: ((program: Command) => void)[] = [
  registerCrawl,
  registerQueries,
];
import { registerFetch } from './fetch.js';
commands.push(registerFetch);
import { registerVerify } from './verify.js';
commands.push(registerVerify);
import { registerReport } from './report.js';
commands.push(registerReport);
import { registerKeygen } from './keygen.js';
commands.push(registerKeygen);
