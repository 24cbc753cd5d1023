#!/usr/bin/env bash
# netdigest-firstboot: moves the secrets a user dropped on the SD card's FAT firmware
# partition (netdigest.env, written from any computer) to root-only files, then deletes
# the file from the FAT partition. Run once per boot, before the netdigest units and
# wpa_supplicant (image/pi5.nix); a missing file is the normal case and does nothing.
#
# netdigest.env, one KEY=VALUE a line (CRLF line endings, a UTF-8 BOM, `export `, spaces
# around `=`, and "double" or 'single' quotes around a value are all accepted):
#   NETDIGEST_MAIL__TO=you@gmail.com        any NETDIGEST_* config override
#   SMTP_PASSWORD=abcd efgh ijkl mnop       the Gmail app password (spaces are fine;
#                                           NETDIGEST_MAIL__PASSWORD= is taken as this)
#   WIFI_SSID=Home  WIFI_PSK=secret  WIFI_COUNTRY=DE   optional Wi-Fi (WPA-PSK/SAE)
#   TIMEZONE=Europe/Berlin                  the Pi's time zone (the capture window's)
#   SSH_AUTHORIZED_KEY=ssh-ed25519 AAAA...  an SSH key for root (repeatable)
#
# A comment may follow a value only after blanks (`WIFI_SSID=Home   # optional`): it is
# removed, with a warning naming the key. A value that itself contains ` #` must be
# quoted (`WIFI_PSK="pass #1 word"`); text after the closing quote may only be a comment.
#
# What goes where (each replaced only when the file names it; the others are kept):
#   SMTP_PASSWORD, NETDIGEST_MAIL__PASSWORD
#                  -> $NETDIGEST_PASSWORD_FILE (0600 root), the service's passwordFile;
#                     never the EnvironmentFile (every unit reads that one)
#   NETDIGEST_*    -> $NETDIGEST_ENV_FILE (0600 root; read by systemd as EnvironmentFile=),
#                     the whole file replaced by the lines given
#   WIFI_*         -> $NETDIGEST_WIFI_CONF (wpa_supplicant's imperative.conf on NixOS)
#   TIMEZONE       -> $NETDIGEST_LOCALTIME, a link into $NETDIGEST_ZONEINFO
#   SSH_AUTHORIZED_KEY -> added to $NETDIGEST_SSH_KEYS (0600)
# Other keys are reported by name (never by value) and ignored. Values are never printed.
# The schedule keys (NETDIGEST_CAPTURE__START/END/TIMEZONE, NETDIGEST_MAIL__SEND_AT) are
# refused: the timers are built from the Nix config and would not follow them.
#
# Paths come from the environment so the script can be tested outside the Pi
# (tests/nix.rs runs it against a temporary directory):
#   NETDIGEST_FIRSTBOOT_SRC  (/boot/firmware/netdigest.env)
#   NETDIGEST_PASSWORD_FILE  (/var/lib/netdigest-secrets/smtp-password)
#   NETDIGEST_ENV_FILE       (/etc/netdigest/netdigest.env)
#   NETDIGEST_WIFI_CONF      (/etc/wpa_supplicant/imperative.conf)
#   NETDIGEST_LOCALTIME      (/etc/localtime)   NETDIGEST_ZONEINFO (/etc/zoneinfo)
#   NETDIGEST_SSH_KEYS       (/root/.ssh/authorized_keys)
# The source file is overwritten with zeros in place (same size, no truncation, synced)
# before it is deleted, so the secrets do not stay in the FAT partition's free clusters.
# (An SD card's wear levelling may still keep old flash pages: this is the best a file
# system can do; an editor that saved earlier versions elsewhere is not covered.)
# Exit: 0 done or nothing to do; 1 the file could not be read, stored or deleted (the
# unit fails visibly; the source file is left in place only if storing failed).
set -euo pipefail
umask 077

src=${NETDIGEST_FIRSTBOOT_SRC:-/boot/firmware/netdigest.env}
pw_file=${NETDIGEST_PASSWORD_FILE:-/var/lib/netdigest-secrets/smtp-password}
env_file=${NETDIGEST_ENV_FILE:-/etc/netdigest/netdigest.env}
wifi_conf=${NETDIGEST_WIFI_CONF:-/etc/wpa_supplicant/imperative.conf}
localtime=${NETDIGEST_LOCALTIME:-/etc/localtime}
zoneinfo=${NETDIGEST_ZONEINFO:-/etc/zoneinfo}
ssh_keys=${NETDIGEST_SSH_KEYS:-/root/.ssh/authorized_keys}

say() { printf 'netdigest-firstboot: %s\n' "$*" >&2; }

if [ ! -e "$src" ]; then
  say "no $src: nothing to do"
  exit 0
fi
if [ ! -f "$src" ] || [ ! -r "$src" ]; then
  say "$src is not a readable file"
  exit 1
fi

# Writes stdin to $1 atomically (temporary file in the same directory, fsync, rename),
# mode 0600, owned by whoever runs this (root on the Pi).
put() {
  local dest=$1 dir tmp
  dir=$(dirname -- "$dest")
  mkdir -p -- "$dir"
  tmp=$(mktemp -- "$dir/.netdigest-firstboot.XXXXXX")
  cat >"$tmp"
  chmod 0600 -- "$tmp"
  sync -- "$tmp" 2>/dev/null || sync
  mv -f -- "$tmp" "$dest"
}

# A value for systemd's EnvironmentFile=: double-quoted, with \ " $ and ` escaped.
envquote() {
  local v=$1
  v=${v//\\/\\\\}
  v=${v//\"/\\\"}
  v=${v//\$/\\\$}
  v=${v//\`/\\\`}
  printf '"%s"' "$v"
}

# The value without its quotes or a trailing comment: "text" or 'text' (up to the last
# matching quote, then only blanks and a comment), else the text up to the first blank
# followed by `#`. Says so (naming the key, never the value) when a comment is removed.
unquote() {
  local key=$1 value=$2 q rest after
  case $value in
    \"* | \'*)
      q=${value:0:1} rest=${value:1}
      if [[ $rest == *"$q"* ]]; then
        after=${rest##*"$q"}
        after="${after#"${after%%[![:space:]]*}"}"
        if [ -z "$after" ] || [[ $after == '#'* ]]; then
          [ -z "$after" ] || say "line $lineno: $key: the comment after the value was removed"
          printf '%s' "${rest%"$q"*}"
          return
        fi
      fi ;;
    *[[:space:]]'#'*)
      value=${value%%[[:space:]]#*}
      value="${value%"${value##*[![:space:]]}"}"
      say "line $lineno: $key: the comment after the value was removed (quote a value that contains ' #')" ;;
  esac
  printf '%s' "$value"
}

password="" have_password=0
wifi_ssid="" wifi_psk="" wifi_country="" timezone=""
env_lines=() new_keys=()
lineno=0
# `|| [ -n "$line" ]`: a last line without a final newline (common from editors on Windows).
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line=${line%$'\r'}                            # CRLF
  [ "$lineno" -eq 1 ] && line=${line#$'\xef\xbb\xbf'}   # UTF-8 byte order mark
  # Trim surrounding blanks.
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  case $line in '' | '#'*) continue ;; esac
  line=${line#export }
  if [[ $line != *=* ]]; then
    say "line $lineno: no '=', ignored"
    continue
  fi
  key=${line%%=*}
  value=${line#*=}
  key="${key%"${key##*[![:space:]]}"}"
  value="${value#"${value%%[![:space:]]*}"}"
  value=$(unquote "$key" "$value")
  case $key in
    SMTP_PASSWORD | NETDIGEST_MAIL__PASSWORD)
      if [ -z "$value" ]; then say "line $lineno: $key is empty, ignored"; continue; fi
      [ "$key" = SMTP_PASSWORD ] ||
        say "line $lineno: $key stored as the password file, not in the environment file"
      password=$value have_password=1 ;;
    WIFI_SSID) wifi_ssid=$value ;;
    WIFI_PSK) wifi_psk=$value ;;
    WIFI_COUNTRY) wifi_country=$value ;;
    TIMEZONE) timezone=$value ;;
    SSH_AUTHORIZED_KEY) new_keys+=("$value") ;;
    NETDIGEST_CAPTURE__START | NETDIGEST_CAPTURE__END | NETDIGEST_CAPTURE__TIMEZONE | NETDIGEST_MAIL__SEND_AT)
      say "line $lineno: $key is ignored: the timers follow the Nix config (services.netdigest.settings); TIMEZONE= sets the Pi's zone" ;;
    NETDIGEST_*)
      if [[ ! $key =~ ^NETDIGEST_[A-Z0-9_]+$ ]]; then
        say "line $lineno: $key is not a valid variable name, ignored"
        continue
      fi
      env_lines+=("$key=$(envquote "$value")") ;;
    *) say "line $lineno: unknown key $key, ignored (expected NETDIGEST_*, SMTP_PASSWORD, WIFI_*)" ;;
  esac
done <"$src"

if [ "$have_password" -eq 1 ]; then
  printf '%s\n' "$password" | put "$pw_file"
  say "stored the SMTP password in $pw_file"
fi

if [ ${#env_lines[@]} -gt 0 ]; then
  {
    printf '# Written by netdigest-firstboot from %s; NETDIGEST_* overrides.\n' "$src"
    printf '%s\n' "${env_lines[@]}"
  } | put "$env_file"
  say "wrote ${#env_lines[@]} setting(s) to $env_file"
fi

if [ -n "$wifi_ssid" ]; then
  if [ -n "$wifi_psk" ] && { [ ${#wifi_psk} -lt 8 ] || [ ${#wifi_psk} -gt 63 ]; }; then
    say "WIFI_PSK must be 8 to 63 characters: Wi-Fi not configured"
  elif [ -n "$wifi_country" ] && [[ ! $wifi_country =~ ^[A-Za-z]{2}$ ]]; then
    say "WIFI_COUNTRY must be two letters (DE, GB, US): Wi-Fi not configured"
  else
    # The SSID in hex (any bytes, no quoting); the passphrase quoted (wpa_supplicant
    # reads up to the last quote, so quotes inside it are fine).
    ssid_hex=$(printf '%s' "$wifi_ssid" | od -An -tx1 -v | tr -d ' \n')
    {
      [ -n "$wifi_country" ] && printf 'country=%s\n' "${wifi_country^^}"
      printf 'network={\n  ssid=%s\n  scan_ssid=1\n' "$ssid_hex"
      if [ -n "$wifi_psk" ]; then
        printf '  key_mgmt=WPA-PSK SAE\n  ieee80211w=1\n  psk="%s"\n' "$wifi_psk"
      else
        printf '  key_mgmt=NONE\n'
      fi
      printf '}\n'
    } | put "$wifi_conf"
    say "configured the Wi-Fi network in $wifi_conf"
  fi
elif [ -n "$wifi_psk" ]; then
  say "WIFI_PSK without WIFI_SSID: Wi-Fi not configured"
fi

if [ -n "$timezone" ]; then
  if [[ $timezone =~ ^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$ ]] && [ -f "$zoneinfo/$timezone" ]; then
    ln -sfn -- "$zoneinfo/$timezone" "$localtime"
    say "time zone set to $timezone"
  else
    say "TIMEZONE=$timezone: no such zone under $zoneinfo, not changed"
  fi
fi

if [ ${#new_keys[@]} -gt 0 ]; then
  mkdir -p -m 0700 -- "$(dirname -- "$ssh_keys")"
  {
    [ -f "$ssh_keys" ] && cat -- "$ssh_keys"
    printf '%s\n' "${new_keys[@]}"
  } | awk 'NF && !seen[$0]++' | put "$ssh_keys"
  say "added ${#new_keys[@]} SSH key(s) to $ssh_keys"
fi

# Everything is stored: overwrite the plain-text copy on the FAT partition in place
# with zeros of the same size (conv=notrunc: the same clusters, not new ones), sync,
# then remove it.
size=$(stat -c %s -- "$src")
if [ "$size" -gt 0 ] &&
  ! dd if=/dev/zero of="$src" bs="$size" count=1 conv=notrunc,fsync status=none; then
  say "could not overwrite $src: remove it by hand, it holds secrets"
  exit 1
fi
sync
if ! rm -f -- "$src"; then
  say "could not delete $src: remove it by hand, it holds secrets"
  exit 1
fi
sync
say "deleted $src"
