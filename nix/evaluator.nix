# The fodder evaluator: what one long-lived `nix repl` per worker thread and target evaluates.
# The package set is imported once; then each attribute path sent to the repl is answered on its
# own, so an error, caught or not, costs that attribute alone (see src/eval/nix-session.ts).
#
#   nix-repl> W = import /scratch/session-1.nix      # imports this file with { specFile; extraConfig; }
#   nix-repl> W.ready                                # "ready", or the error that stops the package set loading
#   nix-repl> A = W.ask /scratch/paths-1-7.json      # a shard's attribute paths, [[name]]
#   nix-repl> A.batch 0 32                           # a JSON list of the records of paths 0..31, or Nix's
#                                                    # error when tryEval cannot catch one of them
#   nix-repl> A.one 5                                # the record of path 5 alone
#   nix-repl> A.explain 5                            # path 5 without tryEval, so Nix prints what tryEval caught
#
#   nix-repl> T = W.target /scratch/target-1.nix     # an on-demand target (src/eval/on-demand.ts): a file
#                                                    # holding a function of { pkgs, system }
#   nix-repl> T.shape                                # JSON: { k: kind, n: the members' names }; kind "drv", "list",
#                                                    # "set", another type, or "error" (caught by tryEval)
#   nix-repl> T.batch                                # JSON: every member's record, with its name in `m`
#   nix-repl> T.one 2                                # member 2's record alone
#   nix-repl> T.explain 2                            # member 2 without tryEval (null: the target itself)
#
# spec.json: { nixpkgs, system, config, overlays: [file], exhaustive: bool }
# A record: { s: "drv", d: drvPath } | { s: "set", r: recurseForDerivations, n: names or null }
#         | { s: "skipped", t: type } | { s: "error", e: "value" | "drvPath" } (caught by tryEval)
{ specFile, extraConfig ? { } }:
let
  spec = builtins.fromJSON (builtins.readFile specFile);
  pkgs = import spec.nixpkgs {
    system = spec.system;
    config = spec.config // extraConfig;
    overlays = map import spec.overlays;
  };

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
  explainValue = x: if builtins.isAttrs x && isDrv x then x.drvPath else builtins.seq x "ok";

  explainOne = path: explainValue (get path);

  # A target's members: the derivation itself (named ""), a list's elements ("0", "1", ...) or a
  # set's attributes, one level deep; each is recorded as walkOne records an attribute.
  target = file:
    let
      value = import file { inherit pkgs; system = spec.system; };
      v = builtins.tryEval value;
      k = if !v.success then "error" else if isDrv value then "drv" else builtins.typeOf value;
      members =
        if k == "drv" then [ { n = ""; x = value; } ]
        else if k == "list" then builtins.genList (i: { n = toString i; x = builtins.elemAt value i; }) (builtins.length value)
        else if k == "set" then map (n: { n = n; x = value.${n}; }) (builtins.attrNames value)
        else [ ];
      record = m:
        let r = builtins.tryEval m.x; in
        { m = m.n; } // (if r.success then classify [ m.n ] r.value else { s = "error"; e = "value"; });
    in {
      shape = builtins.toJSON { inherit k; n = map (m: m.n) members; };
      batch = builtins.toJSON (map record members);
      one = i: builtins.toJSON (record (builtins.elemAt members i));
      explain = i: if i == null then explainValue value else explainValue (builtins.elemAt members i).x;
    };
in {
  inherit target;
  ready = builtins.seq pkgs "ready";
  # the paths of a shard, from a JSON file: records of several at once (one request for many:
  # when one of them fails uncatchably, the caller asks for each alone), of one, and explain
  ask = file:
    let paths = builtins.fromJSON (builtins.readFile file); at = builtins.elemAt paths; in {
      batch = from: to: builtins.toJSON (builtins.genList (k: walkOne (at (from + k))) (to - from));
      one = i: builtins.toJSON (walkOne (at i));
      explain = i: explainOne (at i);
    };
}
