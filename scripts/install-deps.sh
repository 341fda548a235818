#!/bin/sh
# scripts/install-deps.sh - installs everything fcgi-m8 needs to build, test,
# fuzz, benchmark and run the demo, on Debian 12 (bookworm).  Run as root.
# Idempotent: installs only what is missing, and runs `apt-get update` once,
# only when something is missing.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config
clang libclang-rt-14-dev
libfcgi-dev libfcgi-bin libsodium-dev libssl-dev libjson-c-dev libcurl4-openssl-dev libcrypt-dev
libmariadb-dev libpq-dev mariadb-server postgresql
nginx-light spawn-fcgi curl wrk
apache2 libapache2-mod-fcgid php-fpm
python3 python3-jwt python3-cryptography openssl"

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (sudo $0)" >&2
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "install-deps.sh: needs apt-get (Debian 12)" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=
for p in $PKGS; do
    # Any nginx flavour will do (nginx-core, -full, -extras conflict with
    # -light): do not replace one that is already there.
    if [ "$p" = nginx-light ] && { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }; then
        continue
    fi
    installed "$p" || missing="$missing $p"
done

if [ -z "$missing" ]; then
    echo "install-deps.sh: all dependencies are installed"
    exit 0
fi

echo "install-deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Package installs must not start system services (nginx would try to bind
# port 80 and fail the install where that port is taken): a temporary
# policy-rc.d says "no" to invoke-rc.d, unless the machine already has one.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
    trap 'rm -f "$policy"' EXIT INT TERM
fi
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
[ -n "$made_policy" ] && rm -f "$policy"
echo "install-deps.sh: done"
