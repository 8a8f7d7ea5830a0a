/**
 * `npm run test:unit`: the test files that need neither Nix nor a server program (nginx, an FTP
 * server, git or svn) nor the build in dist/, for a quick run while working. `npm test` runs
 * them too, with all the others. A file belongs here only if every test in it runs without
 * those; fetch-runs.test.ts starts Node's own http server in the test process, nothing more.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      'test/attr-path.test.ts',
      'test/cli-commands.test.ts',
      'test/config-docs.test.ts',
      'test/crawl-status.test.ts',
      'test/error-codes.test.ts',
      'test/fetch-plugins.test.ts',
      'test/fetch-runs.test.ts',
      'test/job-claim.test.ts',
      'test/layers.test.ts',
      'test/missing-sizes.test.ts',
      'test/report.test.ts',
    ],
  },
});
