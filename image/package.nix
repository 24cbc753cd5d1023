# netdigest, built with nixpkgs' rustPlatform.buildRustPackage (no crane: one input
# less to pin). flake.nix callPackage's this natively and through
# pkgsCross.aarch64-multiplatform, so every dependency splices to the right platform.
{
  lib,
  rustPlatform,
  pkg-config,
  libpcap,
  dejavu_fonts,
  makeBinaryWrapper,
}:
let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = cargoToml.package.name;
  inherit (cargoToml.package) version;

  # Only what cargo reads: the workspace (the root package, names/, pcapfmt/, synth/), tests/
  # whole (the insta snapshots under tests/snapshots, the SMTP test server), and
  # image/firstboot.sh, which tests/nix.rs runs. lib.fileset rather than a source
  # filter that keeps *.rs/*.toml only: that would drop them.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../build.rs
      ../src
      ../names
      ../pcapfmt
      ../synth
      ../tests
      ../image/firstboot.sh
    ];
  };

  # Every crate in Cargo.lock, vendored by fixed-output fetches; no hash to maintain.
  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [
    pkg-config
    makeBinaryWrapper
  ];
  buildInputs = [ libpcap ];

  env = {
    # The pcap crate's build script asks pkg-config for exactly this version, and
    # without it would dlopen libpcap.so to ask it: impossible when cross-compiling
    # (the library is the target's), and a guess (1.9.1) when it fails.
    LIBPCAP_VER = libpcap.version;
  };

  # The package build runs no tests: most of the suite needs tshark, an SMTP server,
  # network namespaces (root) or ../shared's captures, none of which a package build
  # should pull in or can have in the sandbox. The flake's `checks.tests` runs
  # `cargo test` with those tools (the root-only and ../shared tests skip themselves).
  doCheck = false;

  # Text in the chart images: DejaVu, whatever fontconfig offers (`nix run` on a
  # system without fonts, the Pi). --set-default: a caller's choice wins.
  postInstall = ''
    wrapProgram $out/bin/netdigest \
      --set-default NETDIGEST_FONT_DIR ${dejavu_fonts}/share/fonts
  '';

  meta = {
    description = cargoToml.package.description;
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "netdigest";
    platforms = lib.platforms.linux;
  };
}
