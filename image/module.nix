# services.netdigest: the NixOS module. It writes the three services and three timers
# that `netdigest units` writes (src/units.rs, the source of truth; scripts/install
# uses it), /etc/netdigest/netdigest.toml rendered from
# `settings` and checked at build time by the binary's own `check-config`, and a static
# user and group per service: netdigest-capture, netdigest (nightly), netdigest-mail,
# each writing only its own tree of the state directory (StateDirectory=netdigest/<tree>)
# and reading the stage before it through that stage's group (src/units.rs's table).
#
# Every directive of every unit is the one `netdigest units` writes for the same
# settings; tests/nix.rs renders both and compares them directive by directive. Where
# the module differs on purpose:
# - ExecStart= runs the package's store path (`netdigest units` writes its --bin).
# - Environment= (module only): NETDIGEST_FONT_DIR (the store's DejaVu fonts: a NixOS
#   system has no fontconfig fonts to fall back on) and `environment`'s overrides.
#   NixOS adds its own (PATH, LOCALE_ARCHIVE, TZDIR) besides.
# - The config: /etc/netdigest/netdigest.toml, the binary's default path, as with
#   `netdigest units`; here it is a link into the Nix store (environment.etc), built
#   from `settings` and checked by `check-config`. NETDIGEST_CONFIG is not set, so
#   `netdigest doctor` in a shell reads the same file as the services.
# - EnvironmentFile= is `environmentFiles` (default: `netdigest units`'s
#   -/etc/netdigest/netdigest.env), LoadCredential= follows `passwordFile` (default:
#   the same /etc/netdigest/smtp-password; null: no credential lines at all).
# - capture has restartIfChanged = false (X-RestartIfChanged=false, NixOS only).
#
# The schedule is derived from `settings` (capture.start/end/timezone, mail.send_at),
# not set beside it: the binary reads its window from the same file, and `capture`
# exits doing nothing when started outside the window, so timers set apart from the
# config could silently capture nothing. For the same reason `environment` may not
# override those four keys (asserted).
#
# The SMTP password never enters the Nix store: `passwordFile` is a string path read by
# systemd at start (LoadCredential=smtp-password:...), asserted not to be a store path;
# `settings.mail.password` and `environment.NETDIGEST_MAIL__PASSWORD` are refused.
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
  zoneSuffix = lib.optionalString (tz != null && lib.trim tz != "") " ${tz}";
  onCalendar = t: "*-*-* ${t}:00${zoneSuffix}";
  # As in the units' descriptions: "22:00-06:00", with the zone when set.
  window = "${cap.start}-${cap.end}${zoneSuffix}";
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

  # state.dir as the binary sees it: an override in `environment` wins over settings
  # (the config's own order). src/units.rs DEFAULT_STATE_DIR.
  defaultStateDir = "/var/lib/netdigest";
  stateDir =
    let
      fromSettings = cfg.settings.state.dir or null;
      d = cfg.environment.NETDIGEST_STATE__DIR or fromSettings;
    in
    if d == null then defaultStateDir else toString d;
  # A state.dir other than systemd's StateDirectory: each service's tree there must stay
  # writable under ProtectSystem=strict (it must exist and belong to the service's
  # user), as `netdigest units` writes it. "/var/lib/netdigest/" is the default too (the
  # binary compares paths).
  customStateDir = lib.removeSuffix "/" stateDir != defaultStateDir;
  # A path as one word of a unit file, as src/units.rs unit_word() writes it: `%`
  # doubled (specifiers), double-quoted with \ and " escaped when it holds blanks,
  # quotes, a backslash or `;`. Control characters are asserted away.
  unitWord =
    p:
    let
      e = lib.replaceStrings [ "%" ] [ "%%" ] p;
    in
    if builtins.match "[^[:space:]\"'\\\\;]*" e != null then
      e
    else
      "\"${lib.replaceStrings [ "\\" "\"" ] [ "\\\\" "\\\"" ] e}\"";

  # src/units.rs Identity: who each service runs as, the groups whose files it reads,
  # its tree of the state directory and its umask.
  identity = user: groups: tree: umask: {
    User = user;
    Group = user;
    StateDirectory = "netdigest/${tree}";
    StateDirectoryMode = "0750";
    UMask = umask;
  }
  // lib.optionalAttrs (groups != [ ]) { SupplementaryGroups = [ (toString groups) ]; }
  // lib.optionalAttrs customStateDir {
    ReadWritePaths = [ (unitWord "${lib.removeSuffix "/" stateDir}/${tree}") ];
  };

  # src/units.rs common_service() and HARDENING: every service.
  common = {
    EnvironmentFile = cfg.environmentFiles;
    ProtectSystem = "strict";
    ProtectHome = "yes";
    PrivateTmp = "yes";
    PrivateDevices = "yes";
    NoNewPrivileges = "yes";
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

  # A service: what it does, its command, the shared hardening and environment, and
  # its own settings (`extra`, merged over `common`).
  service = what: command: extra: {
    description = "netdigest: ${what}";
    environment = serviceEnv;
    serviceConfig = common // { ExecStart = "${bin} ${command}"; } // extra;
  };

  # Capture and mail need the network up (src/units.rs: Wants= and After=
  # network-online.target); `after`: units to start after besides.
  networkOnline = after: {
    after = [ "network-online.target" ] ++ after;
    wants = [ "network-online.target" ];
  };

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
        `smtp-password`; when the file is missing the credential is blank
        (SetCredential=smtp-password:\n, fine when the server needs no login).
        null: no credential lines at all (unlike `netdigest units`).
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
        assertion = builtins.match "[^[:cntrl:]]*" stateDir != null;
        message = "services.netdigest: state.dir must not hold a control character (a newline would start a directive of its own in the units).";
      }
      {
        assertion = lib.hasPrefix "/" stateDir;
        message = "services.netdigest: state.dir must be an absolute path (got ${stateDir}): a service has no working directory to resolve it.";
      }
      {
        assertion = !(cfg.settings.mail ? password);
        message = "services.netdigest.settings.mail.password would put the password in the Nix store: use services.netdigest.passwordFile.";
      }
      {
        # Environment= lines live in the unit files, in the store, like `settings`.
        assertion = !(cfg.environment ? NETDIGEST_MAIL__PASSWORD);
        message = "services.netdigest.environment.NETDIGEST_MAIL__PASSWORD would put the password in the Nix store: use services.netdigest.passwordFile.";
      }
    ];

    users.users.netdigest-capture = {
      isSystemUser = true;
      group = "netdigest-capture";
      description = "netdigest capture";
    };
    users.users.netdigest = {
      isSystemUser = true;
      group = "netdigest";
      description = "netdigest convert, analyse and report";
    };
    users.users.netdigest-mail = {
      isSystemUser = true;
      group = "netdigest-mail";
      description = "netdigest mail";
    };
    users.groups.netdigest-capture = { };
    users.groups.netdigest = { };
    users.groups.netdigest-mail = { };
    # Each service's tree is systemd's (StateDirectory=); the directory above them is
    # root's and open to all, so that no service can rename another's tree (a state
    # directory of an older release was netdigest's, 0700).
    systemd.tmpfiles.rules = lib.optional (!customStateDir) "d ${defaultStateDir} 0755 root root -";

    environment.etc."netdigest/netdigest.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    systemd.services.netdigest-capture =
      service "capture the night's traffic (${window})" "capture" (
        identity "netdigest-capture" [ "netdigest" ] "capture" "0027"
        // {
        Type = "simple";
        AmbientCapabilities = "CAP_NET_RAW";
        CapabilityBoundingSet = "CAP_NET_RAW";
        RestrictAddressFamilies = "AF_PACKET AF_NETLINK AF_UNIX AF_INET AF_INET6";
        # Backstop: the window plus 15 minutes (capture stops itself at the window's end).
        RuntimeMaxSec = toString ((windowMinutes + 15) * 60);
        KillSignal = "SIGTERM";
        TimeoutStopSec = "60";
        # src/units.rs CAPTURE_MEMORY_MAX.
        MemoryMax = "256M";
      })
      // networkOnline [ ]
      // {
        # A rebuild during the night must not cut the capture in two.
        restartIfChanged = false;
      };

    systemd.services.netdigest-nightly =
      service "convert, analyse and report the nights whose capture ended" "nightly" (
        identity "netdigest" [ "netdigest-capture" "netdigest-mail" ] "nights" "0077"
        // {
        Type = "oneshot";
        # No network at all: the appliance's own addresses come from capture.json,
        # recorded at capture time; the analysis reads no live system state.
        PrivateNetwork = "yes";
        RestrictAddressFamilies = "AF_UNIX";
        Nice = "10";
        # src/units.rs NIGHTLY_MEMORY_MAX: a night of a million spoofed sources fits.
        MemoryMax = "1536M";
      });

    systemd.services.netdigest-mail =
      service "mail every unsent night's report" "mail" (
        identity "netdigest-mail" [ "netdigest" ] "mail" "0027"
        // {
          Type = "oneshot";
          RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6";
          # src/units.rs MAIL_MEMORY_MAX.
          MemoryMax = "256M";
        }
        // lib.optionalAttrs (cfg.passwordFile != null) {
          LoadCredential = [ "smtp-password:${cfg.passwordFile}" ];
          # systemd uses SetCredential= as the fallback when LoadCredential= cannot read
          # the file, so a missing file gives a blank credential, not a failed start (the
          # binary trims it to "no password"). `\n`, not an empty value: systemd 252
          # rejects `SetCredential=smtp-password:` ("Invalid syntax, ignoring").
          SetCredential = [ "smtp-password:\\n" ];
        }
      )
      # After the nightly job: when both timers fire together at boot (Persistent=true
      # after a night switched off), tonight's report is made before the mail goes out.
      // networkOnline [ "netdigest-nightly.service" ];

    systemd.timers.netdigest-capture =
      timer "netdigest: start the night's capture (${window})"
        cap.start;
    # src/units.rs NIGHTLY_DELAY_MIN: 5 minutes after the window's end.
    systemd.timers.netdigest-nightly =
      timer "netdigest: convert, analyse and report after the capture window"
        (hhmmOf (minutesOf cap.end + 5));
    systemd.timers.netdigest-mail =
      timer "netdigest: mail the morning report"
        cfg.settings.mail.send_at;
  };
}
