#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/property/conformance/end-to-end tests, a
# compile check of the fuzz targets, and the Debian package (scripts/package-test.sh).
# Installs with apt-get whatever the tests need and lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

# Whether a server answers on 127.0.0.1:PORT (within 2 s).
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# Waits up to 30 s for a server to answer on 127.0.0.1:PORT.
wait_for() {
  for _ in $(seq 60); do answers "$1" && return 0; sleep 0.5; done
  echo "$2 does not answer on 127.0.0.1:$1" >&2
  return 1
}

# System packages the tests need: command name -> Debian package (baresip-core: baresip
# without the GUI and video modules its metapackage recommends; iproute2, nftables and
# procps for the NAT tests' network namespaces; rtpengine and kamailio for the ng tests;
# chromium for the browser tests; dnsmasq for the DNS tests; clang and libbpf-dev build the
# relay's eBPF program, ethtool turns checksum offload off in its test).
declare -A needs=([cc]=gcc [make]=make [pkg-config]=pkg-config [sipp]=sip-tester [sipsak]=sipsak [stun]=stun-client
  [baresip]=baresip-core [linphonec]=linphone-cli [dpkg-deb]=dpkg [systemd-analyze]=systemd
  [adduser]=adduser [ip]=iproute2 [nft]=nftables [sysctl]=procps
  [rtpengine]=rtpengine-daemon [kamailio]=kamailio
  [chromium]=chromium [dnsmasq]=dnsmasq-base [clang]=clang [ethtool]=ethtool)
# The store's tests also run on PostgreSQL and MariaDB: installed where none answers.
answers 5432 || needs+=([psql]=postgresql [pg_ctlcluster]=postgresql)
answers 3306 || needs+=([mariadb]=mariadb-server [mariadbd]=mariadb-server)
declare -A missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing[${needs[$cmd]}]=1
done
# Kamailio's WebSocket module, for Kamailio as a WebRTC gateway over our relay.
compgen -G "/usr/lib/*/kamailio/modules/websocket.so" >/dev/null || missing[kamailio-websocket-modules]=1
[ -e /usr/include/bpf/bpf_helpers.h ] || missing[libbpf-dev]=1
if ((${#missing[@]})); then
  echo "installing: ${!missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${!missing[@]}"
fi

# PostgreSQL, with user postgres let in without a password over TCP from this machine.
if ! answers 5432; then
  echo "starting PostgreSQL"
  for hba in /etc/postgresql/*/*/pg_hba.conf; do
    [ -e "$hba" ] || continue
    grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" ||
      $sudo_cmd sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  done
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h | while read -r version cluster _; do
      $sudo_cmd pg_ctlcluster "$version" "$cluster" start || true
      $sudo_cmd pg_ctlcluster "$version" "$cluster" reload
    done
  else
    $sudo_cmd service postgresql start
  fi
  wait_for 5432 PostgreSQL
fi

# MariaDB, with root let in without a password over TCP from this machine.
if ! answers 3306; then
  echo "starting MariaDB"
  $sudo_cmd service mariadb start || $sudo_cmd service mysql start
  wait_for 3306 MariaDB
  $sudo_cmd mariadb -uroot -e "
    ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
    CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
    GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The protocol crates stay without IO: none of them may depend on tokio.
for crate in sip-message sip-transaction registrar auth nat sdp relay ng sip-dns dialog stun script sip-proxy; do
  if cargo tree -q -p "$crate" -e normal | grep -q '^.*tokio v'; then
    echo "$crate depends on tokio: protocol crates are sans-IO" >&2
    exit 1
  fi
done
cargo test --workspace
# Fuzz targets build with cargo-fuzz on nightly; checking them here keeps them compiling.
cargo check --manifest-path fuzz/Cargo.toml
scripts/package-test.sh
