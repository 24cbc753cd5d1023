{
  description = "netdigest: what happened on the home network overnight, in your inbox in the morning";

  # Thin: the package, the module, the Pi system and the VM test live in image/.
  #
  # Pinned in the URLs, not in a flake.lock: the lock could not be produced without
  # network where this was written. nixpkgs follows nixos-raspberrypi's own pin (its
  # flake.lock at that commit: nvmd/nixpkgs modules-with-keys-25.11 at
  # 2597cb7e564b9004c9d3182afb29b37ae842411a), so its binary cache applies to the Pi.
  # Refresh: put a newer commit of nixos-raspberrypi's `main` here, then `nix flake
  # lock` (writes flake.lock); or drop the commit and `nix flake update` (README).
  # nixos-raspberrypi's binary cache (its README and flake.nix give these): without it
  # the Pi kernel builds from source. Nix asks before using a flake's nixConfig (or set
  # accept-flake-config = true).
  nixConfig = {
    extra-substituters = [ "https://nixos-raspberrypi.cachix.org" ];
    extra-trusted-public-keys = [
      "nixos-raspberrypi.cachix.org-1:4iMO9LXa8BqhU+Rpg6LQKiGa2lsNh/j2oiYLNOQ5sPI="
    ];
  };

  inputs = {
    nixos-raspberrypi.url = "github:nvmd/nixos-raspberrypi/6b30596bea9047a7cbb55cb58e6f8a3efa4012e2";
    nixpkgs.follows = "nixos-raspberrypi/nixpkgs";
  };

  outputs =
    {
      self,
      nixpkgs,
      nixos-raspberrypi,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAll = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (
        system: pkgs:
        {
          default = pkgs.callPackage ./image/package.nix { };
        }
        // lib.optionalAttrs (system == "x86_64-linux") {
          # Cross-compiled on x86_64 for the Pi (no emulation needed to build it).
          netdigest-aarch64 = pkgs.pkgsCross.aarch64-multiplatform.callPackage ./image/package.nix { };
        }
        // lib.optionalAttrs (system == "aarch64-linux") {
          # The flashable card: result/sd-image/*.img.zst.
          sdImage = self.nixosConfigurations.pi5.config.system.build.sdImage;
        }
      );

      # services.netdigest, with the package built from the system's own pkgs (right
      # for whatever platform the system is).
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./image/module.nix ];
          services.netdigest.package = lib.mkDefault (pkgs.callPackage ./image/package.nix { });
        };

      nixosConfigurations.pi5 = nixos-raspberrypi.lib.nixosSystem {
        specialArgs = { inherit nixos-raspberrypi; };
        modules = [
          self.nixosModules.default
          ./image/pi5.nix
        ];
      };

      checks = forAll (
        system: pkgs:
        let
          pkg = self.packages.${system}.default;
          fonts = "${pkgs.dejavu_fonts}/share/fonts";
        in
        {
          package = pkg;

          # The test suite with the tools it checks against. Tests needing root
          # (network namespaces) or ../shared's captures skip themselves in the
          # sandbox; tests/nix.rs skips too (no nix-instantiate inside a build).
          tests = pkg.overrideAttrs (old: {
            pname = "netdigest-tests";
            doCheck = true;
            nativeCheckInputs = (old.nativeCheckInputs or [ ]) ++ [
              pkgs.wireshark-cli
              pkgs.tcpdump
              pkgs.openssl
              (pkgs.python3.withPackages (ps: [
                ps.aiosmtpd
                ps.pandas
              ]))
            ];
            env = (old.env or { }) // {
              NETDIGEST_FONT_DIR = fonts;
            };
          });

          clippy = pkg.overrideAttrs (old: {
            pname = "netdigest-clippy";
            nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
            buildPhase = ''
              runHook preBuild
              cargo clippy --release --locked --offline --all-targets -- -D warnings
              runHook postBuild
            '';
            dontCargoInstall = true;
            postInstall = "";
            installPhase = "touch $out";
          });

          fmt =
            pkgs.runCommand "netdigest-fmt"
              {
                nativeBuildInputs = [
                  pkgs.cargo
                  pkgs.rustfmt
                ];
              }
              ''
                cp -r ${pkg.src} src && chmod -R u+w src && cd src
                HOME=$TMPDIR cargo fmt --all -- --check
                touch $out
              '';

          vm = import ./image/vm-test.nix {
            inherit pkgs;
            netdigestModule = self.nixosModules.default;
          };
        }
      );

      devShells = forAll (
        system: pkgs: {
          default = pkgs.mkShell {
            inputsFrom = [ self.packages.${system}.default ];
            packages = [
              pkgs.cargo
              pkgs.rustc
              pkgs.clippy
              pkgs.rustfmt
              pkgs.rust-analyzer
              pkgs.wireshark-cli
              pkgs.tcpdump
              pkgs.openssl
              pkgs.nix
              (pkgs.python3.withPackages (ps: [
                ps.aiosmtpd
                ps.pandas
              ]))
            ];
            LIBPCAP_VER = pkgs.libpcap.version;
            NETDIGEST_FONT_DIR = "${pkgs.dejavu_fonts}/share/fonts";
            # tests/nix.rs evaluates image/module.nix with this lib.
            NIXPKGS_LIB = "${nixpkgs}/lib";
          };
        }
      );

      apps = forAll (
        system: _: {
          default = {
            type = "app";
            program = lib.getExe self.packages.${system}.default;
            meta.description = "netdigest (try `nix run . -- demo`)";
          };
        }
      );
    };
}
