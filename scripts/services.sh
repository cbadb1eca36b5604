#!/usr/bin/env bash
# Makes sure the Redis and PostgreSQL the tests use are answering, starting
# them when they are installed but stopped. Exits non-zero if one stays down.
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

wait_for() {
  local name=$1 check=$2
  for _ in $(seq 1 30); do
    if "$check"; then echo "services: $name is up"; return 0; fi
    sleep 1
  done
  echo "services: $name did not come up on 127.0.0.1" >&2
  return 1
}

if ! redis_up && command -v redis-server >/dev/null; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! postgres_up && command -v pg_ctlcluster >/dev/null; then
  echo "services: starting PostgreSQL"
  for version in /etc/postgresql/*; do
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
  done
fi

wait_for Redis redis_up
wait_for PostgreSQL postgres_up
