/**
 * The cost of starting a child process through execa against node:child_process's `spawn`,
 * side by side in one process: `count` short processes (`true`, default 200) one after another,
 * each side `rounds` times (default 5), alternating, after one warm-up of each; the best round
 * counts. Prints both times and the ratio execa / spawn.
 *
 *   npm run build && node dist/bench/spawn.js [count] [rounds]
 *
 * This is the figure behind the one place that still starts processes with node:child_process
 * (the crawl's Nix process helper, see docs/architecture.md).
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';

const count = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 5);

/** The way workers/nix-spawner.ts starts a plain run: stdin and stdout ignored, stderr piped. */
const viaSpawn = () =>
  new Promise<void>((resolve, reject) => {
    const child = spawn('true', [], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', () => undefined);
    child.once('error', reject);
    child.once('close', () => resolve());
  });

/** The same through execa, as src/process.ts starts every other process. */
const viaExeca = async () => {
  const child = execa('true', [], { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false, reject: false });
  child.stderr.on('data', () => undefined);
  await child;
};

async function timed(start: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await start();
  return performance.now() - t0;
}

await timed(viaSpawn);
await timed(viaExeca);
let bestSpawn = Infinity;
let bestExeca = Infinity;
for (let r = 0; r < rounds; r++) {
  bestSpawn = Math.min(bestSpawn, await timed(viaSpawn));
  bestExeca = Math.min(bestExeca, await timed(viaExeca));
}
const per = (ms: number) => (ms / count).toFixed(2);
console.log(`${count} processes: spawn ${bestSpawn.toFixed(0)} ms (${per(bestSpawn)} ms each), execa ${bestExeca.toFixed(0)} ms (${per(bestExeca)} ms each)`);
console.log(`ratio execa / spawn: ${(bestExeca / bestSpawn).toFixed(2)}`);
