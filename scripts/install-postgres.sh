#!/usr/bin/env bash
# Installs Debian's PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin) when missing:
# tests/postgres.rs starts throw-away clusters from them. Does not start or create a cluster.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
if [[ -x $bin/initdb && -x $bin/postgres && -x $bin/psql ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-postgres: $bin missing; run as root (apt-get install postgresql-15)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the package from starting a cluster of its own where services can start.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
test -x $bin/initdb
echo "install-postgres: installed $($bin/postgres --version)"
