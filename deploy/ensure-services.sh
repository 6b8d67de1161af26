#!/usr/bin/env bash
# Start the machine's Redis, PostgreSQL and RabbitMQ if they are not running; fail if
# they cannot be started. Tests that need them fail (never skip) without them.
set -u
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
rabbit_up() { timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; }

if ! redis_up; then
  echo "starting redis-server on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
fi
if ! pg_up; then
  echo "starting PostgreSQL on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 100); do pg_up && break; sleep 0.1; done
fi
if ! rabbit_up; then
  echo "starting RabbitMQ on 127.0.0.1:5672"
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 300); do rabbit_up && break; sleep 0.1; done
fi
ok=0
redis_up || { echo "ERROR: Redis is not reachable on 127.0.0.1:6379 and could not be started" >&2; ok=1; }
pg_up || { echo "ERROR: PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started" >&2; ok=1; }
rabbit_up || { echo "ERROR: RabbitMQ is not reachable on 127.0.0.1:5672 and could not be started" >&2; ok=1; }
exit $ok
