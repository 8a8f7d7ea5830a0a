/**
 * The layering of src/ (docs/architecture.md), checked by `npm run lint:deps` (and so by `npm test`).
 *
 * Stages, lowest first: a stage imports only stages before it in this list. `src/nix-formats/`
 * (Nix's own formats) sits below all of them and imports nothing of fodder but `src/errors.ts`,
 * the one base every folder shares. No cycles, not even between files of one folder, and type
 * imports count like any other. (SQL only in src/db/ is checked by test/layers.test.ts.)
 */
const STAGES = [
  ['config'],
  ['graph'],
  ['db'],
  ['eval'],
  ['mirror'],
  ['fetch'],
  // peers: neither imports the other
  ['query', 'report'],
  // the service drives the pipeline and answers over HTTP; the command line only starts it
  ['serve'],
  ['cli'],
];

const folder = (names) => `^src/(${names.join('|')})/`;

const layerRules = STAGES.flatMap((names, i) => {
  const later = STAGES.slice(i + 1).flat();
  const peers = names.length > 1 ? names : [];
  return names
    .map((name) => ({
      name: `stage-${name}`,
      comment: `${name} imports only the stages before it (${STAGES.slice(0, i).flat().join(', ') || 'none'}), nix-formats and errors.ts`,
      severity: 'error',
      from: { path: folder([name]) },
      to: { path: folder([...later, ...peers.filter((p) => p !== name)]) },
    }))
    .filter((r) => r.to.path !== '^src/()/');
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a cycle of imports, even between two files of one folder, means the data flows both ways',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'nix-formats-leaf',
      comment: "Nix's own formats (NAR, narinfo, hashes, store paths, .drv) import nothing of fodder but errors.ts",
      severity: 'error',
      from: { path: '^src/nix-formats/' },
      to: { path: '^(src|workers)/', pathNot: ['^src/nix-formats/', '^src/errors\\.ts$'] },
    },
    {
      name: 'shared-base',
      comment: 'src/errors.ts (the errors) and src/process.ts (the one way to run a program) are the bases every folder shares: they import nothing of fodder',
      severity: 'error',
      from: { path: '^src/(errors|process)\\.ts$' },
      to: { path: '^(src|workers)/' },
    },
    {
      name: 'workers-are-entry-points',
      comment: 'workers/ holds thread and process entry points; nothing in src/ imports them',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^workers/' },
    },
    ...layerRules,
    { name: 'not-to-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
