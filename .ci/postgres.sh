#!/usr/bin/env bash
# Install PostgreSQL from Debian's packages (if needed) and start a throwaway cluster on port 5433.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/tmp/cx-postgres
if ! su postgres -s /bin/sh -c "$bin/pg_ctl -D $data status" >/dev/null 2>&1; then
  rm -rf "$data"
  mkdir -p "$data"
  chown postgres "$data"
  su postgres -s /bin/sh -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -o '-p 5433 -k /tmp -c listen_addresses=127.0.0.1' -l $data/log -w start" >/dev/null
fi
psql -h 127.0.0.1 -p 5433 -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='cx'" | grep -q 1 \
  || psql -h 127.0.0.1 -p 5433 -U postgres -c "CREATE ROLE cx LOGIN PASSWORD 'cx' SUPERUSER" >/dev/null
psql -h 127.0.0.1 -p 5433 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='cx'" | grep -q 1 \
  || psql -h 127.0.0.1 -p 5433 -U postgres -c "CREATE DATABASE cx OWNER cx" >/dev/null
echo "PostgreSQL ready on 127.0.0.1:5433"
