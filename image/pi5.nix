# The Raspberry Pi 5 appliance, on nvmd/nixos-raspberrypi (flake.nix builds it with
# nixos-raspberrypi.lib.nixosSystem, which passes `nixos-raspberrypi` in specialArgs).
# `nix build .#packages.aarch64-linux.sdImage` (or
# .#nixosConfigurations.pi5.config.system.build.sdImage) gives result/sd-image/*.img.zst.
#
# Nothing secret is in this file or the image. After flashing, the user writes
# `netdigest.env` onto the card's FAT partition (mounted here at /boot/firmware) from
# any computer; netdigest-firstboot (image/firstboot.sh) moves the SMTP password to a
# root-only file, the NETDIGEST_* lines to /etc/netdigest/netdigest.env, Wi-Fi, time
# zone and SSH keys to their places, and overwrites the file with zeros before deleting
# it from the FAT partition (mounted root-only).
{
  lib,
  pkgs,
  nixos-raspberrypi,
  ...
}:
let
  # SSH keys baked into the image (public keys only; SSH_AUTHORIZED_KEY= in
  # netdigest.env adds more on the card).
  authorizedKeys = [ ];
  secretsDir = "/var/lib/netdigest-secrets";
in
{
  imports = with nixos-raspberrypi.nixosModules; [
    raspberry-pi-5.base
    sd-image
  ];

  system.stateVersion = "25.11";
  networking.hostName = lib.mkDefault "netdigest";

  # SSH with keys only.
  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "prohibit-password";
    };
  };
  users.users.root.openssh.authorizedKeys.keys = authorizedKeys;
  # mDNS, so `ssh root@netdigest.local` finds it.
  services.avahi = {
    enable = true;
    nssmdns4 = true;
    publish = {
      enable = true;
      addresses = true;
    };
  };

  # The Pi kernel has no ZFS module; without this the image tries to build one.
  boot.supportedFilesystems.zfs = lib.mkForce false;

  # The FAT partition (where the user drops netdigest.env) readable by root only: FAT
  # has no owners, so the mount decides; by default every user could read the file.
  # mkForce because nixos-raspberrypi's sd-image sets this list with mkForce: the two
  # definitions at that priority are merged.
  fileSystems."/boot/firmware".options = lib.mkForce [
    "fmask=0077"
    "dmask=0077"
  ];

  # Ethernet by DHCP; Wi-Fi optional: wpa_supplicant on any wireless interface with
  # the imperative config netdigest-firstboot writes from WIFI_SSID/WIFI_PSK.
  networking.wireless.enable = true;
  # nixpkgs' unit `chmod 664`s imperative.conf (and chowns it to wpa_supplicant) before
  # each start: the PSK would be world-readable. Ours runs after theirs (mkAfter) and
  # makes it 0600 again: the daemon (user wpa_supplicant, the owner) still reads it.
  systemd.services.wpa_supplicant.serviceConfig.ExecStartPre = lib.mkAfter [
    "+${pkgs.coreutils}/bin/chmod 0600 /etc/wpa_supplicant/imperative.conf"
  ];

  # The time zone is the card's (TIMEZONE= in netdigest.env), not the image's: the
  # capture window is local time.
  time.timeZone = null;

  services.netdigest = {
    enable = true;
    passwordFile = "${secretsDir}/smtp-password";
    # Mail addresses and other overrides arrive in /etc/netdigest/netdigest.env (the
    # module's default environmentFiles); settings here are the image's defaults.
    settings.mail.smtp = lib.mkDefault "gmail";
  };

  systemd.services.netdigest-firstboot = {
    description = "netdigest: move netdigest.env from the FAT partition to root-only files";
    wantedBy = [ "multi-user.target" ];
    before = [
      "netdigest-capture.service"
      "netdigest-nightly.service"
      "netdigest-mail.service"
      "wpa_supplicant.service"
      "sshd.service"
    ];
    unitConfig.RequiresMountsFor = "/boot/firmware";
    path = [
      pkgs.coreutils
      pkgs.gawk
    ];
    environment = {
      NETDIGEST_FIRSTBOOT_SRC = "/boot/firmware/netdigest.env";
      NETDIGEST_PASSWORD_FILE = "${secretsDir}/smtp-password";
      NETDIGEST_ENV_FILE = "/etc/netdigest/netdigest.env";
      NETDIGEST_WIFI_CONF = "/etc/wpa_supplicant/imperative.conf";
      NETDIGEST_LOCALTIME = "/etc/localtime";
      # /etc/zoneinfo, not a tzdata store path: NixOS keeps /etc/zoneinfo pointing at
      # the current tzdata, so /etc/localtime does not dangle after an upgrade and a
      # garbage collection.
      NETDIGEST_ZONEINFO = "/etc/zoneinfo";
      NETDIGEST_SSH_KEYS = "/root/.ssh/authorized_keys";
    };
    serviceConfig = {
      Type = "oneshot";
      ExecStart = "${pkgs.bash}/bin/bash ${./firstboot.sh}";
      StateDirectory = "netdigest-secrets";
      StateDirectoryMode = "0700";
      UMask = "0077";
    };
  };
}
