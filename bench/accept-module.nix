# Evaluates nix/module.nix with the real NixOS module system of a nixpkgs tree
# (bench/accept-module.ts): the generated unit of services.fodder, and what it opens.
{ nixpkgs, module }:
let
  system = import (nixpkgs + "/nixos/lib/eval-config.nix") {
    system = "x86_64-linux";
    modules = [
      module
      ({ pkgs, ... }: {
        services.fodder = {
          enable = true;
          listen = "0.0.0.0:7480";
          openFirewall = true;
          stateDir = "/var/lib/fodder";
          # a stand-in for nix/package.nix (an old tree has no buildNpmPackage); only its path is used
          package = pkgs.writeScriptBin "fodder" "#!/bin/sh\n";
          settings = {
            systems = [ "x86_64-linux" ];
            service = { keep = 2; nixpkgs = { git = "https://example.invalid/nixpkgs"; branch = "main"; }; };
          };
        };
      })
    ];
  };
  inherit (system) config;
  service = config.systemd.services.fodder;
in {
  execStart = service.serviceConfig.ExecStart;
  user = service.serviceConfig.User;
  envPath = service.environment.PATH;
  firewall = config.networking.firewall.allowedTCPPorts;
  userIsSystem = config.users.users.fodder.isSystemUser;
  unit = config.systemd.units."fodder.service".text;
}
