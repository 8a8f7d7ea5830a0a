#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { FodderError } from '../errors.js';
import { commands } from './commands/index.js';

/** Builds the `fodder` program with every command registered. */
export function createProgram(): Command {
  const program = new Command();
  program
    .name('fodder')
    .description('Exhaustive nixpkgs source crawler and mirror')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof FodderError) {
      process.stderr.write(`fodder: error [${err.code}]: ${err.message}\n`);
      return err.code === 'USAGE' ? 2 : 1;
    }
    process.stderr.write(`fodder: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
