# The fodder walker: evaluates a shard of attribute paths of a nixpkgs-shaped package set, one
# after another, and reports each as a `trace:` line carrying a JSON record, so that when an
# uncatchable error kills the process the culprit is the path after the last record.
#
#   nix-instantiate --eval --strict --json --read-write-mode nix/walker.nix \
#     --argstr specFile /tmp/spec.json --arg extraConfig '{ ... }'
#
# spec.json: { nixpkgs, system, config, overlays: [file], paths: [[name]], mode: "walk"|"explain",
#              exhaustive: bool }
{ specFile, extraConfig ? { } }:
let
  spec = builtins.fromJSON (builtins.readFile specFile);
  pkgs = import spec.nixpkgs {
    system = spec.system;
    config = spec.config // extraConfig;
    overlays = map import spec.overlays;
  };

  marker = "@fodder@";
  emit = record: next: builtins.trace (marker + builtins.toJSON record) next;

  get = path: builtins.foldl' (v: n: v.${n}) pkgs path;

  isDrv = x: (builtins.tryEval ((x.type or null) == "derivation")).value == true;

  namesOf = x: want: if want then builtins.attrNames x else null;

  # Classifies one value already known to have evaluated (to weak head normal form).
  classify = path: x:
    let t = builtins.typeOf x; in
    if t != "set" then { s = "skipped"; t = t; }
    else if path != [ ] && isDrv x then
      let d = builtins.tryEval x.drvPath; in
      if d.success then { s = "drv"; d = d.value; } else { s = "error"; e = "drvPath"; }
    else
      let
        r = path == [ ] || (builtins.tryEval (x.recurseForDerivations or false)).value == true;
      in { s = "set"; r = r; n = namesOf x (r || spec.exhaustive); };

  walkOne = path:
    let v = builtins.tryEval (get path); in
    if v.success then classify path v.value else { s = "error"; e = "value"; };

  # Explain mode evaluates without tryEval so that Nix prints the error message of a caught failure.
  explainOne = path:
    let x = get path; in
    if builtins.isAttrs x && isDrv x then x.drvPath else builtins.seq x "ok";

  step = i: path:
    emit ({ i = i; } // walkOne path) (i + 1);

  walk = builtins.foldl' (i: path: step i path) 0 spec.paths;
  explain = builtins.foldl' (i: path: builtins.seq (explainOne path) (i + 1)) 0 spec.paths;
in
  builtins.seq pkgs (emit { ready = true; } (if spec.mode == "explain" then explain else walk))
