# services.netdigest: the NixOS module. It writes the three services and three timers
# of notes/units-contract.md (the same names, schedule and hardening as
# `netdigest units` and scripts/install), /etc/netdigest/netdigest.toml rendered from
# `settings` and checked at build time by the binary's own `check-config`, and a static
# user and group `netdigest`.
#
# The schedule is derived from `settings` (capture.start/end/timezone, mail.send_at),
# not set beside it: the binary reads its window from the same file, and `capture`
# exits doing nothing when started outside the window, so timers set apart from the
# config could silently capture nothing. For the same reason `environment` may not
# override those four keys (asserted).
#
# The SMTP password never enters the Nix store: `passwordFile` is a string path read by
# systemd at start (LoadCredential=smtp-password:...), asserted not to be a store path.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    types
    ;
  cfg = config.services.netdigest;
  settingsFormat = pkgs.formats.toml { };

  # Keys the timers are built from: overriding them in the environment would move the
  # window the binary enforces but not the timers.
  scheduleEnvKeys = [
    "NETDIGEST_CAPTURE__START"
    "NETDIGEST_CAPTURE__END"
    "NETDIGEST_CAPTURE__TIMEZONE"
    "NETDIGEST_MAIL__SEND_AT"
  ];

  hhmm = types.strMatching "([01][0-9]|2[0-3]):[0-5][0-9]";
  # "HH:MM" -> minutes after midnight.
  minutesOf =
    t:
    let
      parts = lib.splitString ":" t;
    in
    lib.toInt (lib.removePrefix "0" (builtins.elemAt parts 0)) * 60
    + lib.toInt (lib.removePrefix "0" (builtins.elemAt parts 1));
  pad2 = n: if n < 10 then "0${toString n}" else toString n;
  hhmmOf =
    m:
    let
      m' = lib.mod m 1440;
    in
    "${pad2 (m' / 60)}:${pad2 (lib.mod m' 60)}";

  cap = cfg.settings.capture;
  tz = cap.timezone;
  onCalendar = t: "*-*-* ${t}:00" + lib.optionalString (tz != null) " ${tz}";
  # The window's length in minutes: the end is on the next day when not after the start.
  windowMinutes =
    let
      d = minutesOf cap.end - minutesOf cap.start;
    in
    if d > 0 then d else d + 1440;

  # TOML has no null: unset optional keys are left out.
  renderedSettings = lib.filterAttrsRecursive (_: v: v != null) cfg.settings;
  settingsFile = settingsFormat.generate "netdigest.toml" renderedSettings;
  envAssignments = lib.concatStringsSep " " (
    lib.mapAttrsToList (n: v: "${n}=${lib.escapeShellArg v}") cfg.environment
  );
  # The config as the services read it, checked by the binary itself (the same
  # environment overrides applied). A cross-built package cannot run on the build
  # machine: then the file is used unchecked (build the image natively or under binfmt
  # emulation and the check runs).
  configFile =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      pkgs.runCommand "netdigest.toml" { } ''
        cp ${settingsFile} $out
        env -i NETDIGEST_CONFIG=$out ${envAssignments} ${cfg.package}/bin/netdigest check-config
      ''
    else
      settingsFile;

  bin = "${cfg.package}/bin/netdigest";

  # notes/units-contract.md, "Every service".
  common = {
    User = "netdigest";
    Group = "netdigest";
    StateDirectory = "netdigest";
    StateDirectoryMode = "0700";
    EnvironmentFile = cfg.environmentFiles;
    ProtectSystem = "strict";
    ProtectHome = "yes";
    PrivateTmp = "yes";
    PrivateDevices = "yes";
    NoNewPrivileges = "yes";
    UMask = "0077";
    SystemCallFilter = [ "@system-service" ];
    SystemCallArchitectures = "native";
    ProtectKernelTunables = "yes";
    ProtectKernelModules = "yes";
    ProtectKernelLogs = "yes";
    ProtectControlGroups = "yes";
    ProtectClock = "yes";
    ProtectHostname = "yes";
    RestrictNamespaces = "yes";
    RestrictRealtime = "yes";
    RestrictSUIDSGID = "yes";
    LockPersonality = "yes";
    MemoryDenyWriteExecute = "yes";
    ProtectProc = "invisible";
    ProcSubset = "pid";
    CapabilityBoundingSet = "";
  };
  serviceEnv = {
    # The charts' text: DejaVu, whatever fontconfig has (a headless system has none).
    NETDIGEST_FONT_DIR = "${pkgs.dejavu_fonts}/share/fonts";
  }
  // cfg.environment;

  timer = description: at: {
    inherit description;
    wantedBy = [ "timers.target" ];
    timerConfig = {
      OnCalendar = onCalendar at;
      Persistent = "true";
    };
  };
in
{
  options.services.netdigest = {
    enable = mkEnableOption "netdigest, the nightly home-network capture and morning report";

    package = mkOption {
      type = types.package;
      description = "The netdigest package (this flake's `packages.<system>.default`).";
    };

    interface = mkOption {
      type = types.str;
      default = "any";
      example = "eth0";
      description = ''
        Interface to capture on (`settings.capture.interface`); `"any"` for all of them.
      '';
    };

    settings = mkOption {
      description = ''
        netdigest.toml (README "Configuration"), rendered to
        /etc/netdigest/netdigest.toml and checked with `netdigest check-config` at build
        time. The timers are derived from capture.start, capture.end (+ 5 min for the
        report), capture.timezone and mail.send_at.
      '';
      default = { };
      example = lib.literalExpression ''
        {
          capture.start = "23:00";
          mail = { smtp = "gmail"; username = "you@gmail.com"; to = "you@gmail.com"; };
        }
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options.capture = mkOption {
          default = { };
          description = "`[capture]`.";
          type = types.submodule {
            freeformType = settingsFormat.type;
            options = {
              interface = mkOption {
                type = types.str;
                default = cfg.interface;
                defaultText = lib.literalExpression "config.services.netdigest.interface";
                description = "Interface to capture on.";
              };
              start = mkOption {
                type = hhmm;
                default = "22:00";
                description = "Window start, local time; the capture timer fires then.";
              };
              end = mkOption {
                type = hhmm;
                default = "06:00";
                description = "Window end (next day when not after start); the report is built 5 minutes later.";
              };
              timezone = mkOption {
                type = types.nullOr types.str;
                default = null;
                example = "Europe/Berlin";
                description = "IANA zone for the window and the timers; null: the system's.";
              };
            };
          };
        };
        options.mail = mkOption {
          default = { };
          description = "`[mail]`.";
          type = types.submodule {
            freeformType = settingsFormat.type;
            options.send_at = mkOption {
              type = hhmm;
              default = "06:30";
              description = "When the mail timer fires, local time.";
            };
          };
        };
      };
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        NETDIGEST_CAPTURE__INTERFACE = "wlan0";
      };
      description = ''
        `NETDIGEST_*` overrides (`NETDIGEST_<SECTION>__<KEY>`) set on every unit; they
        win over `settings`. In the Nix store: no secrets here (use `passwordFile`).
      '';
    };

    environmentFiles = mkOption {
      type = types.listOf types.str;
      default = [ "-/etc/netdigest/netdigest.env" ];
      description = ''
        systemd EnvironmentFile= entries (`-` prefix: optional) with `NETDIGEST_*`
        lines, read at start, outside the store. The default is the contract's.
      '';
    };

    passwordFile = mkOption {
      type = types.nullOr types.str;
      default = "/etc/netdigest/smtp-password";
      example = "/run/secrets/netdigest-smtp-password";
      description = ''
        File holding the SMTP password (a Gmail app password), readable by root,
        outside the Nix store. Handed to the mail unit as the systemd credential
        `smtp-password`; when the file is missing the credential is empty (fine when
        the server needs no login). null: no credential at all.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion =
          cfg.passwordFile == null
          || (
            !lib.hasPrefix "/nix/store" cfg.passwordFile
            && !lib.hasPrefix builtins.storeDir cfg.passwordFile
            && !builtins.hasContext cfg.passwordFile
            && lib.hasPrefix "/" cfg.passwordFile
          );
        message = ''
          services.netdigest.passwordFile must be an absolute path outside the Nix store
          (a string such as "/run/secrets/smtp-password", not a Nix path or a store path):
          everything in the store is world-readable.
        '';
      }
      {
        assertion = lib.all (n: builtins.match "NETDIGEST_[A-Z0-9_]+" n != null) (
          lib.attrNames cfg.environment
        );
        message = "services.netdigest.environment: only NETDIGEST_* variables (got ${toString (lib.attrNames cfg.environment)}).";
      }
      {
        assertion = !lib.any (k: cfg.environment ? ${k}) scheduleEnvKeys;
        message = ''
          services.netdigest.environment must not set ${toString scheduleEnvKeys}: the
          timers are built from settings; set services.netdigest.settings.capture.start
          (etc.) instead.
        '';
      }
      {
        assertion = !(cfg.settings.mail ? password);
        message = "services.netdigest.settings.mail.password would put the password in the Nix store: use services.netdigest.passwordFile.";
      }
    ];

    users.users.netdigest = {
      isSystemUser = true;
      group = "netdigest";
      description = "netdigest capture and report";
    };
    users.groups.netdigest = { };

    environment.etc."netdigest/netdigest.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    systemd.services.netdigest-capture = {
      description = "netdigest: capture the night's traffic";
      after = [ "network.target" ];
      environment = serviceEnv;
      # A rebuild during the night must not cut the capture in two.
      restartIfChanged = false;
      serviceConfig = common // {
        Type = "simple";
        ExecStart = "${bin} capture";
        AmbientCapabilities = "CAP_NET_RAW";
        CapabilityBoundingSet = "CAP_NET_RAW";
        RestrictAddressFamilies = "AF_PACKET AF_NETLINK AF_UNIX AF_INET AF_INET6";
        # Backstop: the window plus 15 minutes (capture stops itself at the window's end).
        RuntimeMaxSec = toString ((windowMinutes + 15) * 60);
        KillSignal = "SIGTERM";
        TimeoutStopSec = "60";
      };
    };

    systemd.services.netdigest-nightly = {
      description = "netdigest: convert, analyse and report finished nights";
      environment = serviceEnv;
      serviceConfig = common // {
        Type = "oneshot";
        ExecStart = "${bin} nightly";
        PrivateNetwork = "yes";
        RestrictAddressFamilies = "AF_UNIX";
        Nice = "10";
      };
    };

    systemd.services.netdigest-mail = {
      description = "netdigest: mail unsent reports";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      environment = serviceEnv;
      serviceConfig =
        common
        // {
          Type = "oneshot";
          ExecStart = "${bin} mail";
          RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6";
        }
        // lib.optionalAttrs (cfg.passwordFile != null) {
          LoadCredential = [ "smtp-password:${cfg.passwordFile}" ];
          # systemd uses SetCredential= as the fallback when LoadCredential= cannot read
          # the file, so a missing file gives a blank credential, not a failed start (the
          # binary trims it to "no password"). `\n`, not an empty value: systemd 252
          # rejects `SetCredential=smtp-password:` ("Invalid syntax, ignoring").
          SetCredential = [ "smtp-password:\\n" ];
        };
    };

    systemd.timers.netdigest-capture = timer "netdigest: start the capture window" cap.start;
    systemd.timers.netdigest-nightly =
      timer "netdigest: build the report after the window"
        (hhmmOf (minutesOf cap.end + 5));
    systemd.timers.netdigest-mail = timer "netdigest: mail the report" cfg.settings.mail.send_at;
  };
}
