# fodder as a Nix package: the TypeScript build of this tree, its production npm dependencies,
# and `bin/fodder` running the CLI with the tools it starts on its PATH (Nix, git, tar, xz,
# unzip, zstd; appended, so a Nix already on the caller's PATH, the system's, is used first).
#
#   nix-build -E 'with import <nixpkgs> { }; callPackage ./nix/package.nix { }'
#
# The npm dependencies come from package-lock.json itself (importNpmLock, nixpkgs 24.05 and
# later): one fixed-output fetch per package, by the URL and integrity the lock file records, so
# there is no npmDepsHash to keep up to date (.npmrc keeps npm writing those URLs). The native
# module (better-sqlite3) is built from source by node-gyp, which needs Python.
{ lib, buildNpmPackage, importNpmLock, nodejs_20, makeWrapper, nix, git, gnutar, xz, unzip, zstd }:

buildNpmPackage {
  pname = "fodder";
  version = (lib.importJSON ../package.json).version;
  src = lib.cleanSourceWith {
    src = ../.;
    # what the build and the CLI need: not the working state (node_modules, dist, data)
    filter = path: type:
      let rel = lib.removePrefix (toString ../. + "/") (toString path); in
      !(lib.hasPrefix "node_modules" rel || lib.hasPrefix "dist" rel || lib.hasPrefix "data" rel);
  };
  npmDeps = importNpmLock {
    package = lib.importJSON ../package.json;
    packageLock = lib.importJSON ../package-lock.json;
  };
  npmConfigHook = importNpmLock.npmConfigHook;
  nodejs = nodejs_20;
  nativeBuildInputs = [ makeWrapper nodejs_20.passthru.python ];

  # `npm run build` (tsc) is buildNpmPackage's default build
  # the CLI finds its own files (nix/evaluator.nix, dist/workers/, web/dashboard/, the bundled test package set
  # it crawls by default) above dist/, so the tree is installed as it is laid out here
  installPhase = ''
    runHook preInstall
    npm prune --omit=dev --no-audit --no-fund
    mkdir -p $out/lib/fodder $out/bin
    cp -r package.json dist node_modules nix web $out/lib/fodder/
    mkdir -p $out/lib/fodder/test/fixtures
    cp -r test/fixtures/nixpkgs $out/lib/fodder/test/fixtures/
    makeWrapper ${nodejs_20}/bin/node $out/bin/fodder \
      --add-flags $out/lib/fodder/dist/src/cli/main.js \
      --suffix PATH : ${lib.makeBinPath [ nix git gnutar xz unzip zstd ]}
    runHook postInstall
  '';

  meta = {
    description = "Exhaustive nixpkgs source crawler and mirror";
    license = lib.licenses.mit;
    mainProgram = "fodder";
    platforms = lib.platforms.linux;
  };
}
