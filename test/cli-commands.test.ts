import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { commands } from '../src/cli/commands/index.js';

describe('the command table', () => {
  it('names, for each module, exactly the commands it registers, each name once', async () => {
    const all: string[] = [];
    for (const m of commands) {
      const program = new Command();
      (await m.load())(program);
      const registered = program.commands.map((c) => c.name());
      expect(registered, m.names.join(' ')).toEqual([...m.names]);
      all.push(...registered);
    }
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expect.arrayContaining(['crawl', 'sources', 'fetch', 'bundle', 'manifest', 'serve', 'job']));
  });
});
