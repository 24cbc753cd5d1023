# NixOS VM test of services.netdigest (flake check `vm`): two machines on one VLAN.
# `appliance` runs the module capturing on eth1 and a loopback SMTP server (aiosmtpd,
# its Mailbox handler writing a maildir); `peer` makes traffic. The appliance boots
# with its hardware clock (qemu -rtc base=...) five minutes before a two-minute window,
# so the capture *timer* starts the capture when the window opens; the window ends by
# itself, then nightly and mail run as their timers would run them, and the message
# must be in the maildir. (Not `date -s` in the test: a clock set backwards leaves a
# calendar timer waiting for the old next elapse, systemd #6036.)
{
  pkgs,
  netdigestModule,
}:
pkgs.testers.runNixOSTest {
  name = "netdigest";

  nodes = {
    peer = {
      networking.firewall.enable = false;
    };

    appliance =
      { pkgs, ... }:
      {
        imports = [ netdigestModule ];
        # The clock starts at the RTC's base (UTC, the VM's zone); nothing may set it.
        services.timesyncd.enable = false;
        virtualisation.qemu.options = [ "-rtc base=2026-01-02T21:55:00" ];
        networking.firewall.enable = false;

        services.netdigest = {
          enable = true;
          interface = "eth1";
          settings = {
            capture = {
              start = "22:00";
              end = "22:02";
            };
            mail = {
              host = "127.0.0.1";
              port = 2525;
              tls = "none"; # allowed to loopback only
              to = "ops@example.org";
              from = "netdigest@appliance.test";
              send_at = "22:30";
            };
          };
          # The default passwordFile (/etc/netdigest/smtp-password) is absent on
          # purpose: the mail unit must start anyway (SetCredential= fallback) and the
          # binary log in without a password (no username configured).
        };

        systemd.services.smtp-sink = {
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            StateDirectory = "smtp-sink";
            ExecStart = "${
              pkgs.python3.withPackages (ps: [ ps.aiosmtpd ])
            }/bin/python3 -m aiosmtpd -n -l 127.0.0.1:2525 -c aiosmtpd.handlers.Mailbox /var/lib/smtp-sink/Maildir";
          };
        };
      };
  };

  testScript = ''
    start_all()
    appliance.wait_for_unit("multi-user.target")
    appliance.wait_for_unit("smtp-sink.service")
    appliance.wait_for_open_port(2525)
    peer.wait_for_unit("multi-user.target")

    timers = appliance.succeed("systemctl list-timers --all --no-pager")
    for t in ["netdigest-capture.timer", "netdigest-nightly.timer", "netdigest-mail.timer"]:
        assert t in timers, timers
    appliance.succeed("netdigest check-config")
    appliance.succeed("id netdigest")

    with subtest("the capture timer starts the capture at the window's start"):
        # Booted before the window: the timer, not a catch-up, must start it.
        appliance.succeed("test $(date +%s) -lt $(date -d '2026-01-02 22:00' +%s)")
        appliance.fail("systemctl is-active netdigest-capture.service")
        appliance.wait_until_succeeds("systemctl is-active netdigest-capture.service", timeout=420)

    with subtest("traffic on eth1 during the window"):
        peer.succeed("ping -c 30 -i 0.5 appliance")
        appliance.succeed("ping -c 10 -i 0.2 peer")

    with subtest("the capture ends by itself at 22:02 and succeeds"):
        appliance.wait_until_fails("systemctl is-active netdigest-capture.service", timeout=240)
        appliance.succeed("test \"$(systemctl show -p Result --value netdigest-capture.service)\" = success")
        appliance.succeed("ls /var/lib/netdigest/capture/2026-01-02/ | grep -q pcap")

    with subtest("nightly builds the report"):
        appliance.succeed("systemctl start netdigest-nightly.service")
        appliance.succeed("test -s /var/lib/netdigest/nights/2026-01-02/summary.json")
        appliance.succeed("test -s /var/lib/netdigest/nights/2026-01-02/report/report.eml")

    with subtest("mail delivers it to the SMTP server, once"):
        appliance.succeed("systemctl start netdigest-mail.service")
        appliance.wait_until_succeeds("test \"$(ls /var/lib/smtp-sink/Maildir/new | wc -l)\" = 1", timeout=30)
        msg = appliance.succeed("cat /var/lib/smtp-sink/Maildir/new/*")
        assert "ops@example.org" in msg, msg
        assert "2026-01-02" in msg, msg
        appliance.succeed("systemctl start netdigest-mail.service")
        appliance.succeed("test \"$(ls /var/lib/smtp-sink/Maildir/new | wc -l)\" = 1")

    # Nothing of the services runs as root: a user per service, each owning only its
    # tree (0750) under a state directory that is root's (src/units.rs).
    appliance.succeed("test \"$(stat -c %U:%a /var/lib/netdigest)\" = root:755")
    appliance.succeed("test \"$(stat -c %U:%G:%a /var/lib/netdigest/capture)\" = netdigest-capture:netdigest-capture:750")
    appliance.succeed("test \"$(stat -c %U:%G:%a /var/lib/netdigest/nights)\" = netdigest:netdigest:750")
    appliance.succeed("test \"$(stat -c %U:%G:%a /var/lib/netdigest/mail)\" = netdigest-mail:netdigest-mail:750")
    appliance.succeed("test \"$(stat -c %U /var/lib/netdigest/mail/2026-01-02/mail.json)\" = netdigest-mail")
    appliance.succeed("test \"$(stat -c %a /var/lib/netdigest/nights/2026-01-02/packets.parquet)\" = 600")
  '';
}
