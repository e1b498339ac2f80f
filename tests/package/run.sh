#!/usr/bin/env bash
# The Debian package, built and checked the way a server gets it:
#   1. dpkg-buildpackage (debhelper, debian/) packages the release build's binary; nothing is
#      compiled again;
#   2. lintian: no error and no warning on the package (overrides, if any, are justified in
#      debian/apphealth.lintian-overrides);
#   3. the package installed with dpkg into a scratch root (`dpkg --root`, maintainer scripts
#      run chrootless with DPKG_ROOT set, as debhelper's snippets support; no service is started:
#      the root's policy-rc.d forbids it): the apphealth user and group, the secrets directory,
#      the enabled unit, the conffiles;
#   4. `systemd-analyze verify` on the installed unit (inside that root), and its exposure score
#      from `systemd-analyze security --offline`;
#   5. the installed binary: --version matches debian/changelog, --check-config accepts the
#      shipped /etc/apphealth/apphealth.yml as it is and with every commented example enabled,
#      and it serves /metrics over TLS with a web config and a certificate made here;
#   6. purge removes the conffiles and the unit's enablement.
#
#   tests/package/run.sh                      # packages build/release
#   APPHEALTH_BUILD_DIR=build/dev tests/package/run.sh
#   APPHEALTH_KEEP=1 tests/package/run.sh     # keeps the work directory and prints the .deb's path
#
# Exits non-zero on the first failed check. Takes about half a minute.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build_dir="$(cd "${APPHEALTH_BUILD_DIR:-$repo/build/release}" && pwd)"
binary="$build_dir/exporter/apphealth_exporter"
[[ -x "$binary" ]] || { echo "package: $binary missing: build the release first (see scripts/test.sh)" >&2; exit 1; }

needed=(debhelper dpkg-dev lintian help2man systemd)
missing=()
for p in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "package: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

work="$(mktemp -d /tmp/apphealth-package.XXXXXX)"
trap '[[ -n "${APPHEALTH_KEEP:-}" ]] || rm -rf "$work"' EXIT
fail() { echo "package: FAIL: $*" >&2; exit 1; }
step_start=$(date +%s)
ok() {
  echo "package: ok ($(( $(date +%s) - step_start ))s): $*"
  step_start=$(date +%s)
}

# --- 1. build: a copy of what the package takes from the tree (dpkg-buildpackage writes into
# debian/ and puts the .deb beside the source directory, so neither touches the checkout).
src="$work/apphealth-src"
mkdir -p "$src/exporter"
cp -a "$repo/debian" "$repo/rules" "$repo/dashboards" "$repo/alertmanager" "$repo/docs" "$repo/README.md" "$src/"
cp -a "$repo/exporter/apphealth.example.yml" "$src/exporter/"
(cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-noddebs}" APPHEALTH_BUILD_DIR="$build_dir" dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) ||
  { tail -40 "$work/build.log" >&2; fail "dpkg-buildpackage"; }
version="$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)"
deb="$work/apphealth_${version}_$(dpkg --print-architecture).deb"
[[ -f "$deb" ]] || fail "no $deb after the build"
ok "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) from $binary"

# Every shared library the binary links comes from a package the .deb depends on (shlibs), so
# `apt install ./apphealth_*.deb` pulls them all (libmicrohttpd12 for the beacon listener, ...).
depends="$(dpkg-deb -f "$deb" Depends)"
depends_names="$(sed -E 's/\([^)]*\)//g; s/[,|]/\n/g' <<<"$depends" | tr -d ' ')"
needed="$(objdump -p "$binary" | awk '/^  NEEDED/ {print $2}')"
resolved="$(ldd "$binary")"
paths=()
for soname in $needed; do
  path="$(awk -v s="$soname" '$1 == s {print $3}' <<<"$resolved")"
  [[ -n "$path" ]] || fail "$soname: not found by ldd"
  paths+=("$path" "$(readlink -f "$path")")
done
# One dpkg -S for all of them (it reads the whole file database each time); with merged /usr
# a library is known to dpkg under /lib or /usr/lib, so both spellings are asked.
owners="$(dpkg -S "${paths[@]}" 2>/dev/null || true)"
for soname in $needed; do
  path="$(awk -v s="$soname" '$1 == s {print $3}' <<<"$resolved")"
  owner="$(awk -F': ' -v a="$path" -v b="$(readlink -f "$path")" '$2 == a || $2 == b {sub(/:.*/, "", $1); print $1; exit}' <<<"$owners")"
  [[ -n "$owner" ]] || fail "$soname ($path): no Debian package owns it"
  # The dependency may name a virtual package the owner provides (libspdlog1.10-fmt9).
  names="$owner $(dpkg-query -W -f='${Provides}' "$owner" | sed -E 's/ \([^)]*\)//g; s/,/ /g')"
  found=""
  for name in $names; do
    grep -Fxq "$name" <<<"$depends_names" && found=$name
  done
  [[ -n "$found" ]] || fail "$soname comes from $owner, which the package does not depend on: $depends"
done
ok "Depends covers every library the binary links ($(wc -w <<<"$needed") NEEDED): $depends"

# --- 2. lintian on everything built (the package and its -dbgsym).
lintian_out="$(lintian --fail-on error,warning --display-info "$work"/*.deb 2>&1 |
  { grep -v '^running with root privileges is not recommended!$' || true; })" ||
  { echo "$lintian_out" >&2; fail "lintian found errors or warnings"; }
if [[ -n "$lintian_out" ]]; then echo "$lintian_out" | sed 's/^/  lintian: /'; fi
ok "lintian: no error, no warning ($(grep -c '^[IP]:' <<<"$lintian_out" || true) info/pedantic tags, shown above)"

# --- 3. install into a scratch root.
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log" "$root/usr/sbin"
touch "$root/var/lib/dpkg/status"
# Whatever runs on the host, nothing may start a service from this root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
# The scratch root's dpkg database has none of the libraries: the host's satisfy them.
dpkg --root="$root" --force-script-chrootless --force-depends -i "$deb" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "dpkg --root -i"; }
grep -q '^apphealth:x:[0-9]*:[0-9]*:apphealth exporter:/nonexistent:/usr/sbin/nologin$' "$root/etc/passwd" ||
  fail "postinst did not create the apphealth system user: $(cat "$root/etc/passwd" 2>&1)"
uid="$(awk -F: '$1 == "apphealth" {print $3}' "$root/etc/passwd")"
(( uid < 1000 )) || fail "apphealth user has uid $uid, not a system uid"
gid="$(awk -F: '$1 == "apphealth" {print $3}' "$root/etc/group")"
[[ -n "$gid" ]] || fail "no apphealth group"
[[ "$(stat -c '%a %u %g' "$root/etc/apphealth/secrets")" == "750 0 $gid" ]] ||
  fail "/etc/apphealth/secrets is $(stat -c '%a %u %g' "$root/etc/apphealth/secrets"), want 750 root apphealth"
[[ -L "$root/etc/systemd/system/multi-user.target.wants/apphealth.service" ]] || fail "the unit was not enabled"
conffiles="$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}' apphealth)"
for f in /etc/apphealth/apphealth.yml /etc/default/apphealth; do
  grep -q "^ $f " <<<"$conffiles" || fail "$f is not a conffile: $conffiles"
done
for f in rules/*.rules.yml dashboards/*.json alertmanager/alertmanager.yml; do
  [[ -f "$root/usr/share/apphealth/$f" ]] || fail "/usr/share/apphealth/$f missing"
done
ok "installed into a scratch root: user apphealth (uid $uid), /etc/apphealth/secrets 0750 root:apphealth, unit enabled, conffiles $(grep -c . <<<"$conffiles"), rules/dashboards/alertmanager under /usr/share/apphealth"

# --- 4. the unit.
unit="$root/lib/systemd/system/apphealth.service"
[[ -f "$unit" ]] || fail "$unit missing"
# verify resolves the unit's dependencies and commands in the root: give it what every Debian
# system has there, systemd's own targets and procps' kill (ExecReload).
for t in /lib/systemd/system/*.target; do cp -n "$t" "$root/lib/systemd/system/"; done
mkdir -p "$root/bin" && cp /bin/kill "$root/bin/kill"
verify_out="$(MANPATH="$root/usr/share/man" systemd-analyze verify --root="$root" "$unit" 2>&1)" ||
  { echo "$verify_out" >&2; fail "systemd-analyze verify"; }
[[ -z "$verify_out" ]] || { echo "$verify_out" >&2; fail "systemd-analyze verify printed diagnostics"; }
# verify checks man: links only; file: links must point into the package too.
for doc in $(sed -n 's/^Documentation=file://p' "$unit"); do
  [[ -f "$root$doc" ]] || fail "the unit's Documentation=file:$doc is not in the package"
done
security_out="$(systemd-analyze security --offline=true --root="$root" --threshold=20 "$unit" 2>&1)" ||
  { echo "$security_out" >&2; fail "systemd-analyze security: exposure above 2.0"; }
ok "systemd-analyze verify: clean; security: $(tail -1 <<<"$security_out" | sed 's/^→ //')"

# --- 5. the installed binary on the shipped configuration.
installed="$root/usr/bin/apphealth_exporter"
[[ "$("$installed" --version)" == "apphealth_exporter $version" ]] ||
  fail "binary says '$("$installed" --version)', debian/changelog says $version"
"$installed" --config.file="$root/etc/apphealth/apphealth.yml" --check-config ||
  fail "the shipped /etc/apphealth/apphealth.yml is invalid"
# Its examples are lines with one '#'; prose has two. Enabled, they must be valid too (with
# the password file they name in a place this test can write).
mkdir -p "$work/secrets" && echo secret >"$work/secrets/postgres_password"
sed -E 's/^#([^#]|$)/\1/; s#/etc/apphealth/secrets/#'"$work"'/secrets/#' "$root/etc/apphealth/apphealth.yml" >"$work/enabled.yml"
grep -q '^postgres:' "$work/enabled.yml" || fail "uncommenting the shipped config found no postgres section"
"$installed" --config.file="$work/enabled.yml" --check-config || fail "the shipped config's examples are invalid"
ok "installed binary: --version $version; --check-config accepts the shipped config and its examples"

# TLS from the installed binary as a server runs it: libmicrohttpd and GnuTLS from the package's
# Depends (CivetWeb's TLS would need libssl.so from libssl-dev), a certificate made here.
tls="$work/tls" && mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/key.pem" -out "$tls/cert.pem" \
  -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null || fail "openssl could not make a certificate"
printf 'tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n' >"$tls/web.yml"
echo '{}' >"$tls/apphealth.yml"
"$installed" --config.file="$tls/apphealth.yml" --web.config.file="$tls/web.yml" --check-config >/dev/null ||
  fail "the installed binary refuses a TLS web config"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$installed" --config.file="$tls/apphealth.yml" --web.config.file="$tls/web.yml" \
  --web.listen-address="127.0.0.1:$port" >"$tls/exporter.log" 2>&1 &
exporter_pid=$!
served=""
for _ in $(seq 1 100); do
  if curl -fsS --cacert "$tls/cert.pem" "https://localhost:$port/metrics" 2>/dev/null | grep -q '^apphealth_build_info'; then
    served=yes && break
  fi
  sleep 0.2
done
kill "$exporter_pid" && wait "$exporter_pid" || true
[[ -n "$served" ]] || { cat "$tls/exporter.log" >&2; fail "the installed binary did not serve /metrics over TLS"; }
ok "installed binary serves /metrics over TLS (--web.config.file)"

# --- 6. purge.
dpkg --root="$root" --force-script-chrootless --force-depends --purge apphealth >"$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "dpkg --purge"; }
[[ ! -e "$root/etc/apphealth/apphealth.yml" && ! -e "$root/etc/default/apphealth" ]] || fail "purge left conffiles"
[[ ! -e "$root/etc/systemd/system/multi-user.target.wants/apphealth.service" ]] || fail "purge left the unit enabled"
ok "purge removed the conffiles and the unit's enablement"
if [[ -n "${APPHEALTH_KEEP:-}" ]]; then echo "package: kept $deb"; fi
echo "package: all checks passed"
