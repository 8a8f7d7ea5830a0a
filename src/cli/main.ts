#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { fodderVersion, versionText } from './version.js';
import { refuseEmptyValues } from './common.js';
import { SIGNAL_EXIT, failureOf, failureText } from './failure.js';

/**
 * Builds the `fodder` program: with only the module of the command `name` when one of its
 * commands is named, else with every command (for `--help`, `help`, an unknown name's error).
 */
export async function createProgram(name?: string): Promise<Command> {
  const program = new Command();
  program
    .name('fodder')
    .description('Exhaustive nixpkgs source crawler and mirror')
    // the option is answered in main(), before commander sees it; registered here for --help
    .version(fodderVersion(), '-V, --version', "print fodder's version and the Nix version it runs")
    .showHelpAfterError()
    .exitOverride()
    .hook('preAction', (_program, command) => refuseEmptyValues(command));
  const named = commands.filter((m) => name !== undefined && m.names.includes(name));
  for (const m of named.length ? named : commands) (await m.load())(program);
  return program;
}

/**
 * Standard output closed early (`fodder attrs | head -1`): nothing more can be said there, and it
 * is not a failure to report. The command ends quietly with the status of a program killed by
 * SIGPIPE, as `git log | head` does.
 */
let outputClosed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
    outputClosed = true;
    process.exitCode = SIGNAL_EXIT.SIGPIPE; // also when it comes after the command ended
    return;
  }
  fail(err);
});
// standard error closed too: nothing can be reported there
process.stderr.on('error', () => undefined);

function report(err: unknown): number {
  const f = failureOf(err);
  process.stderr.write(failureText(f));
  return f.exitCode;
}

/** A failure outside the command's own flow (an error event nobody listened to). */
function fail(err: unknown): void {
  process.exitCode = report(err);
  process.exit();
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

async function main(argv: string[]): Promise<number> {
  // `fodder --version` asks Nix for its version too, which commander's synchronous handler cannot
  if (argv[2] === '--version' || argv[2] === '-V') {
    process.stdout.write(await versionText());
    return 0;
  }
  try {
    const program = await createProgram(argv[2]);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    return report(err);
  }
}

void main(process.argv).then((code) => {
  process.exitCode = outputClosed ? SIGNAL_EXIT.SIGPIPE : code;
});
