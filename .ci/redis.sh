#!/usr/bin/env bash
# Install Redis from Debian's packages (if needed) and start a throwaway server on 127.0.0.1:6380.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
data=/tmp/cx-redis
mkdir -p "$data"
if ! redis-cli -h 127.0.0.1 -p 6380 ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port 6380 --dir "$data" --save "" --appendonly no \
    --daemonize yes --pidfile "$data/redis.pid" --logfile "$data/redis.log"
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p 6380 ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
redis-cli -h 127.0.0.1 -p 6380 ping >/dev/null
echo "Redis ready on 127.0.0.1:6380"
