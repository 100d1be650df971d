#!/usr/bin/env bash
# Make sure a Redis answers on RIVULET_REDIS_HOST:PORT (default 127.0.0.1:6379):
# use the one running, else start redis-server, installing it from Debian if missing.
set -euo pipefail
host=${RIVULET_REDIS_HOST:-127.0.0.1}
port=${RIVULET_REDIS_PORT:-6379}

ping() { (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if ping; then echo "==> redis: answering at $host:$port"; exit 0; fi
if ! command -v redis-server >/dev/null; then
  echo "==> redis: not installed; installing redis-server from Debian"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi
echo "==> redis: starting redis-server on $host:$port"
redis-server --bind "$host" --port "$port" --daemonize yes --appendonly yes --dir /tmp --logfile /tmp/rivulet-redis.log
for _ in $(seq 50); do ping && { echo "==> redis: ready"; exit 0; }; sleep 0.1; done
echo "redis did not start; see /tmp/rivulet-redis.log" >&2; exit 1
