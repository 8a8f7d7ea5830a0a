// @ts-check
/**
 * ESLint: the recommended rules of ESLint and typescript-eslint, with type information (a whole
 * run takes some 25 s of one core). Rules turned off say why.
 */
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'test/fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // the configuration files at the top are in no tsconfig: they get a default project
      parserOptions: { projectService: { allowDefaultProject: ['*.js', '*.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `_` names what is left out on purpose (`const { timeoutMs: _t, ...what } = spec`)
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // `async` marks a function that returns a promise (a plug-in's fetch, a hasher's finish) even with nothing to await
      '@typescript-eslint/require-await': 'off',
      // the first error of a run is kept (as `unknown`) and thrown once the work has stopped: the rule cannot see it is an error
      '@typescript-eslint/only-throw-error': 'off',
      // the same for a rejection that passes on what was caught
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    // tests and benchmarks read JSON that fodder or Nix printed and compare it with what they expect: an `any` there fails an assertion
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
  // plain JavaScript (configuration, a test's worker script): no types to check, Node's globals
  { files: ['**/*.js', '**/*.cjs', '**/*.mjs'], extends: [tseslint.configs.disableTypeChecked], languageOptions: { globals: globals.node } },
  // the dashboard's script runs in the browser, as a classic script
  { files: ['web/**/*.js'], languageOptions: { globals: globals.browser, sourceType: 'script' } },
);
