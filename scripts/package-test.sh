#!/usr/bin/env bash
# The Debian package: builds it with cargo-deb (from the debug build by default, in the workspace's target
# folder), checks its files, modes, conffiles and maintainer scripts, and the systemd unit
# with `systemd-analyze verify`. As root, on a machine where ferrosip is neither installed
# nor has a user, it also installs the package, checks the user, the modes, the CLI and a
# server started as that user, then purges it and checks that nothing is left.
# FERROSIP_PACKAGE_INSTALL=0 skips the installation. The test packages the debug build
# (`cargo test` made it; a release build would take the suite past its time); operators
# build theirs with `cargo deb -p ferrosip` (README). FERROSIP_PACKAGE_PROFILE=release tests
# that one.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "package-test: FAILED: $*" >&2
  exit 1
}
ok() { echo "package-test: ok: $*"; }
# The text in $1 has a line matching the extended regex $2.
has() { grep -Eq -- "$2" <<<"$1" || fail "$3"; }

command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
profile=${FERROSIP_PACKAGE_PROFILE:-dev}
if [ "$profile" = dev ]; then
  cargo build -q -p ferrosip
  deb=$(cargo deb -p ferrosip --profile dev --no-build --fast | tail -n 1)
else
  deb=$(cargo deb -p ferrosip --profile "$profile" | tail -n 1)
fi
[ -f "$deb" ] || fail "cargo deb did not name the package it built (got: $deb)"
ok "built $deb"

work=$(mktemp -d "$PWD/target/package-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Files, with owners and modes as dpkg-deb lists them.
contents=$(dpkg-deb -c "$deb")
for entry in \
  '-rwxr-xr-x (root/root|0/0) .* \./usr/bin/ferrosip$' \
  '-rw-r----- (root/root|0/0) .* \./etc/ferrosip/ferrosip\.toml$' \
  '-rw-r--r-- (root/root|0/0) .* \./etc/ferrosip/ferrosip\.cfg$' \
  '-rw-r--r-- (root/root|0/0) .* \./(usr/)?lib/systemd/system/ferrosip\.service$' \
  '-rw-r--r-- (root/root|0/0) .* \./etc/fail2ban/filter\.d/ferrosip\.conf$' \
  '-rw-r--r-- (root/root|0/0) .* \./usr/share/doc/ferrosip/jail\.d-ferrosip\.conf$'; do
  has "$contents" "^$entry" "no entry like $entry in:
$contents"
done
ok "contents"

info=$(dpkg-deb -I "$deb")
has "$info" '^ Package: ferrosip$' "not the ferrosip package"
has "$info" '^ Depends: .*adduser' "no dependency on adduser"
conffiles=$(dpkg-deb -I "$deb" conffiles)
for f in /etc/ferrosip/ferrosip.toml /etc/ferrosip/ferrosip.cfg; do
  has "$conffiles" "^$f$" "$f is not a conffile"
done
postinst=$(dpkg-deb -I "$deb" postinst)
has "$postinst" 'adduser --system --group --home /var/lib/ferrosip' "postinst makes no system user"
has "$postinst" 'install -d -o ferrosip -g ferrosip -m 0750 /var/lib/ferrosip' "postinst makes no state folder"
has "$postinst" 'deb-systemd-helper' "postinst does not register the unit"
has "$(dpkg-deb -I "$deb" postrm)" 'deluser --system' "postrm does not remove the user on purge"
ok "conffiles and maintainer scripts"

# The files as installed, the unit and the configuration checked in place.
root="$work/root"
dpkg-deb -x "$deb" "$root"
cmp "$root/etc/ferrosip/ferrosip.cfg" ferrosip.cfg || fail "ferrosip.cfg differs from the default script"
"$root/usr/bin/ferrosip" check --config "$root/etc/ferrosip/ferrosip.toml" >/dev/null ||
  fail "ferrosip check refuses the packaged configuration"
config=$(cat "$root/etc/ferrosip/ferrosip.toml")
has "$config" '^database = "/var/lib/ferrosip/ferrosip\.db"$' "the config's database is not in /var/lib/ferrosip"
has "$config" '^token_file = "/var/lib/ferrosip/ferrosip\.token"$' "the config's token is not in /var/lib/ferrosip"
has "$config" '^script = "ferrosip\.cfg"$' "the config names no script"
unit=$(find "$root" -name ferrosip.service)
has "$(cat "$unit")" '^ExecStart=/usr/bin/ferrosip serve --config /etc/ferrosip/ferrosip\.toml$' "unit: ExecStart"
# The unit, as extracted: `verify` may only miss the binary (installed below, and verified
# again there); `security` rates its hardening (0 best, 10 worst).
# verify_unit FILE [IGNORED]: systemd-analyze verify's complaints but those matching IGNORED
# must be none; skipped with a message where systemd-analyze cannot run.
verify_unit() {
  local out
  out=$(systemd-analyze verify "$1" 2>&1 | grep -v -- "${2:-^$}" || true)
  if grep -Eq 'Failed to (initialize|set ?up|connect|allocate manager)' <<<"$out"; then
    echo "package-test: SKIPPED systemd-analyze verify $1: it cannot run here: $out"
    return
  fi
  [ -z "$out" ] || fail "systemd-analyze verify $1: $out"
  ok "systemd-analyze verify $1"
}
if ! command -v systemd-analyze >/dev/null; then
  echo "package-test: SKIPPED systemd-analyze: not installed (apt-get install systemd)"
else
  verify_unit "$unit" 'Command /usr/bin/ferrosip is not executable'
  systemd-analyze security --offline=true --threshold=20 "$unit" >"$work/security" 2>&1 ||
    fail "the unit's exposure is above 2.0: $(cat "$work/security")"
  ok "$(tail -n 1 "$work/security" | sed 's/^→ //')"
fi

# Installed for real, then purged.
if [ "${FERROSIP_PACKAGE_INSTALL:-1}" = 0 ]; then
  echo "package-test: SKIPPED installation (FERROSIP_PACKAGE_INSTALL=0)"
  exit 0
elif [ "$(id -u)" -ne 0 ]; then
  echo "package-test: SKIPPED installation: needs root"
  exit 0
elif dpkg -s ferrosip >/dev/null 2>&1 || getent passwd ferrosip >/dev/null ||
  [ -e /etc/ferrosip ] || [ -e /var/lib/ferrosip ]; then
  echo "package-test: SKIPPED installation: ferrosip is installed here already (or its user or folders exist)"
  exit 0
fi
before=$(ls -d /etc/fail2ban 2>/dev/null || true)
server=
trap '[ -z "$server" ] || kill -9 "$server" 2>/dev/null; dpkg --purge ferrosip >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
dpkg -i "$deb" >/dev/null
mode() { stat -c '%U:%G %a' "$1"; }
id ferrosip | grep -Eq '^uid=[0-9]+\(ferrosip\) gid=[0-9]+\(ferrosip\)' || fail "no ferrosip user: $(id ferrosip)"
[ "$(getent passwd ferrosip | cut -d: -f6)" = /var/lib/ferrosip ] || fail "home of ferrosip"
[ "$(mode /var/lib/ferrosip)" = "ferrosip:ferrosip 750" ] || fail "/var/lib/ferrosip: $(mode /var/lib/ferrosip)"
[ "$(mode /etc/ferrosip/ferrosip.toml)" = "root:ferrosip 640" ] || fail "config: $(mode /etc/ferrosip/ferrosip.toml)"
[ "$(mode /usr/bin/ferrosip)" = "root:root 755" ] || fail "binary: $(mode /usr/bin/ferrosip)"
ok "installed: user ferrosip, modes"
if command -v systemd-analyze >/dev/null; then
  verify_unit "${unit#"$root"}"
fi

ferrosip check --config /etc/ferrosip/ferrosip.toml >/dev/null || fail "ferrosip check as root"
runuser -u ferrosip -- ferrosip check --config /etc/ferrosip/ferrosip.toml >/dev/null ||
  fail "ferrosip check as the ferrosip user"
# The commands find the packaged configuration without --config, from any folder.
out=$(cd "$work" && ferrosip domain list 2>&1) && fail "domain list without a database: $out"
has "$out" '^error: no database at /var/lib/ferrosip/ferrosip\.db \(from /etc/ferrosip/ferrosip\.toml;' \
  "domain list without a database: $out"
(cd "$work" && echo pw | ferrosip user add alice@example.com --password-stdin >/dev/null 2>&1) ||
  fail "user add as root"
[ "$(mode /var/lib/ferrosip/ferrosip.db)" = "ferrosip:ferrosip 644" ] ||
  fail "a database root made is not ferrosip's: $(mode /var/lib/ferrosip/ferrosip.db)"
[ "$(ferrosip user list --config /etc/ferrosip/ferrosip.toml 2>&1)" = alice@example.com ] ||
  fail "user list --config"
ok "the CLI as root finds the database"

# The server as the service runs it (its user, its configuration), on free loopback ports.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sip=$(free_port)
api=$(free_port)
setpriv --reuid=ferrosip --regid=ferrosip --init-groups ferrosip serve --config /etc/ferrosip/ferrosip.toml \
  --listen "udp:127.0.0.1:$sip" --api "127.0.0.1:$api" 2>"$work/serve.log" &
server=$!
for _ in $(seq 50); do
  [ -s /var/lib/ferrosip/ferrosip.token ] && ferrosip ping "sip:127.0.0.1:$sip" --timeout 1 >/dev/null 2>&1 && break
  sleep 0.2
done
ferrosip ping "sip:127.0.0.1:$sip" --timeout 1 >/dev/null || fail "the server does not answer: $(cat "$work/serve.log")"
[ "$(mode /var/lib/ferrosip/ferrosip.token)" = "ferrosip:ferrosip 600" ] ||
  fail "token: $(mode /var/lib/ferrosip/ferrosip.token)"
kill -TERM "$server"
wait "$server" || fail "the server did not stop cleanly: $(cat "$work/serve.log")"
server=
left=$(ls /var/lib/ferrosip)
[ "$left" = "$(printf 'ferrosip.db\nferrosip.token')" ] || fail "left in /var/lib/ferrosip: $left"
ok "the server runs as ferrosip and stops cleanly"

dpkg --purge ferrosip >/dev/null
for gone in /usr/bin/ferrosip /etc/ferrosip /var/lib/ferrosip /etc/fail2ban/filter.d/ferrosip.conf \
  /lib/systemd/system/ferrosip.service /usr/lib/systemd/system/ferrosip.service /usr/share/doc/ferrosip; do
  [ ! -e "$gone" ] || fail "$gone is left after purge"
done
[ "$(ls -d /etc/fail2ban 2>/dev/null || true)" = "$before" ] || fail "/etc/fail2ban is left after purge"
! getent passwd ferrosip >/dev/null || fail "user ferrosip is left after purge"
! getent group ferrosip >/dev/null || fail "group ferrosip is left after purge"
! dpkg -s ferrosip >/dev/null 2>&1 || fail "dpkg still knows ferrosip"
if ls /var/lib/systemd/deb-systemd-helper-*/ 2>/dev/null | grep -q ferrosip; then
  fail "deb-systemd-helper state is left"
fi
ok "purged: nothing left"
