# Helpers shared by cross/build, cross/check and cross/test (sourced, not run).

# Installs the Debian packages given (name or name:arch) that are not installed yet.
# Adds the arm64 architecture first when a :arm64 package is asked for.
cross_need_pkgs() {
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "cross: installing ${missing[*]}" >&2
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [[ " ${missing[*]}" == *":arm64"* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The toolchain for building: cross gcc and libc, the arm64 libpcap, the rustup target.
cross_need_toolchain() {
  cross_need_pkgs pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross libpcap-dev:arm64
  command -v cargo >/dev/null || { echo "cross: cargo not found: install Rust with rustup first" >&2; exit 1; }
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu
  fi
  # pcap's build script must not dlopen the target's libpcap: give it the version.
  LIBPCAP_VER=$(PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --modversion libpcap)
  export LIBPCAP_VER
}

# Cargo's target directory (honours CARGO_TARGET_DIR and cargo config).
cross_target_dir() {
  cargo metadata --format-version 1 --no-deps --offline 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
