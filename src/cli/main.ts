#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { FodderError } from '../errors.js';
import { commands } from './commands/index.js';
import { fodderVersion, versionText } from './version.js';

/** Builds the `fodder` program with every command registered. */
export function createProgram(): Command {
  const program = new Command();
  program
    .name('fodder')
    .description('Exhaustive nixpkgs source crawler and mirror')
    // the option is answered in main(), before commander sees it; registered here for --help
    .version(fodderVersion(), '-V, --version', "print fodder's version and the Nix version it runs")
    .showHelpAfterError()
    .exitOverride();
  for (const register of commands) register(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  // `fodder --version` asks Nix for its version too, which commander's synchronous handler cannot
  if (argv[2] === '--version' || argv[2] === '-V') {
    process.stdout.write(await versionText());
    return 0;
  }
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
