# The NixOS module of `fodder serve`: services.fodder.
#
#   imports = [ ./nix/module.nix ];
#   services.fodder = {
#     enable = true;
#     listen = "0.0.0.0:7480";
#     openFirewall = true;
#     settings = {
#       systems = [ "x86_64-linux" ];
#       service = { schedule = "0 3 * * *"; keep = 3; tokenFile = "/run/keys/fodder-token";
#                   nixpkgs = { git = "https://github.com/NixOS/nixpkgs"; branch = "nixos-unstable"; }; };
#       fetch.cache.secretKeyFile = "/run/keys/fodder-cache.secret";
#     };
#   };
#
# Written with what the NixOS module system has offered since 17.03 (types.attrs, builtins.toJSON
# for the YAML config, since JSON is YAML), so it evaluates on old and new NixOS alike.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkOption types;
  cfg = config.services.fodder;
  port = lib.toInt (lib.last (lib.splitString ":" cfg.listen));
  # the database and the mirror in the state directory, unless the settings say otherwise
  # (`service.nixpkgs.git` is cloned beside the database)
  settings = lib.recursiveUpdate { db = "${cfg.stateDir}/fodder.db"; fetch.mirror = "${cfg.stateDir}/mirror"; } cfg.settings;
  configFile = pkgs.writeText "fodder.yaml" (builtins.toJSON settings);
in
{
  options.services.fodder = {
    enable = mkEnableOption "fodder, the nixpkgs source mirror (fodder serve)";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = "pkgs.callPackage ./nix/package.nix { }";
      description = "The fodder package.";
    };

    settings = mkOption {
      type = types.attrs;
      default = { };
      description = ''
        fodder's config (docs/config.md), written as its YAML config file. `db` and
        `fetch.mirror` default to the state directory; `service.listen` is the `listen` option.
      '';
    };

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:7480";
      description = "HOST:PORT the service listens on (fodder serve --listen).";
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/fodder";
      description = "The service's database, mirror and package set clone (its only writable place).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the listen port in the firewall.";
    };
  };

  config = mkIf cfg.enable {
    users.users.fodder = {
      isSystemUser = true;
      group = "fodder";
      home = cfg.stateDir;
      description = "fodder service";
    };
    users.groups.fodder = { };

    # the state directory, wherever it is (StateDirectory= only makes directories under /var/lib)
    systemd.tmpfiles.rules = [ "d '${cfg.stateDir}' 0750 fodder fodder - -" ];

    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall port;

    systemd.services.fodder = {
      description = "fodder: nixpkgs source mirror";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      # the system's Nix first (its daemon, its settings); git for service.nixpkgs.git
      path = [ config.nix.package pkgs.git ];
      environment = { HOME = cfg.stateDir; };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/fodder serve --config ${configFile} --listen ${cfg.listen}";
        User = "fodder";
        Group = "fodder";
        WorkingDirectory = cfg.stateDir;
        Restart = "on-failure";
        RestartSec = "10s";
        # a stop marks the running job interrupted; the next start takes it up
        KillSignal = "SIGTERM";
        TimeoutStopSec = "90s";
        # hardening: the state directory is the only writable place
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ReadWritePaths = [ cfg.stateDir ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictSUIDSGID = true;
        RestrictRealtime = true;
        LockPersonality = true;
        RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6";
        UMask = "0027";
      } // lib.optionalAttrs (lib.hasPrefix "/var/lib/" cfg.stateDir) {
        StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;
        StateDirectoryMode = "0750";
      };
    };
  };
}
