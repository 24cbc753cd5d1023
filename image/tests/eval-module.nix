# Evaluates image/module.nix with nixpkgs' `lib` alone (no nixpkgs, no NixOS): small
# stand-ins declare the NixOS options the module sets, and a stand-in `pkgs` gives
# placeholder store paths. Used by tests/nix.rs:
#   nix-instantiate --eval --strict --json image/tests/eval-module.nix \
#     --arg lib 'import /path/to/nixpkgs.lib/lib' --argstr packageDir DIR \
#     --arg userModule '{ services.netdigest.settings.capture.start = "23:00"; }'
# The result: the systemd services and timers, users, /etc entries, the settings as
# the TOML file gets them, the `environment` overrides, and the messages of failed
# assertions.
{
  lib,
  # Directory standing in for the package's store path (DIR/bin/netdigest).
  packageDir,
  userModule ? { },
}:
let
  inherit (lib) mkOption types;
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/00000000000000000000000000000000-${name}";
  };
  # pkgs.formats.toml's value type, as nixpkgs defines it.
  tomlValue = types.nullOr (
    types.oneOf [
      types.bool
      types.int
      types.float
      types.str
      types.path
      (types.attrsOf tomlValue)
      (types.listOf tomlValue)
    ]
  );
  pkgs = {
    formats.toml = _: {
      type = types.attrsOf tomlValue;
      generate = name: _value: fake name;
    };
    runCommand = name: _env: _script: fake name;
    dejavu_fonts = fake "dejavu-fonts";
    stdenv = {
      hostPlatform = { };
      buildPlatform.canExecute = _: true;
    };
  };
  package = {
    type = "derivation";
    name = "netdigest";
    outPath = packageDir;
  };

  # The NixOS options the module sets, declared strictly: a misspelt option in the
  # module is an evaluation error here.
  standIns = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      users.users = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              isSystemUser = mkOption { type = types.bool; default = false; };
              group = mkOption { type = types.str; };
              description = mkOption { type = types.str; default = ""; };
            };
          }
        );
        default = { };
      };
      users.groups = mkOption {
        type = types.attrsOf (types.submodule { });
        default = { };
      };
      environment.etc = mkOption {
        type = types.attrsOf (
          types.submodule {
            options.source = mkOption { type = types.unspecified; };
          }
        );
        default = { };
      };
      systemd.tmpfiles.rules = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      systemd.services = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              description = mkOption { type = types.str; default = ""; };
              after = mkOption { type = types.listOf types.str; default = [ ]; };
              before = mkOption { type = types.listOf types.str; default = [ ]; };
              wants = mkOption { type = types.listOf types.str; default = [ ]; };
              wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
              environment = mkOption { type = types.attrsOf types.str; default = { }; };
              restartIfChanged = mkOption { type = types.bool; default = true; };
              unitConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; };
              serviceConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; };
            };
          }
        );
        default = { };
      };
      systemd.timers = mkOption {
        type = types.attrsOf (
          types.submodule {
            options = {
              description = mkOption { type = types.str; default = ""; };
              wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
              timerConfig = mkOption { type = types.attrsOf types.unspecified; default = { }; };
            };
          }
        );
        default = { };
      };
    };
  };

  evaluated = lib.evalModules {
    specialArgs = { inherit pkgs; };
    modules = [
      ../module.nix
      standIns
      {
        services.netdigest = {
          enable = true;
          inherit package;
        };
      }
      userModule
    ];
  };
  c = evaluated.config;
in
{
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  inherit (c.systemd) services timers;
  inherit (c.users) users groups;
  tmpfiles = c.systemd.tmpfiles.rules;
  etc = lib.mapAttrs (_: e: toString e.source) c.environment.etc;
  settings = lib.filterAttrsRecursive (_: v: v != null) c.services.netdigest.settings;
  # services.netdigest.environment, for `netdigest units` run on the same config.
  inherit (c.services.netdigest) environment;
}
