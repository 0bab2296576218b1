#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer at UPSELL_DATABASE_URL and UPSELL_AMQP_URL.
# Order: already reachable; else start the local servers where they are installed; else, where a
# Docker engine runs, `docker compose up`; else say exactly what to install.
set -u
cd "$(dirname "$0")/.."
upsell=.venv/bin/upsell

reachable() { "$upsell" check >/dev/null 2>&1; }
wait_reachable() {
  for _ in $(seq 1 "$1"); do reachable && return 0; sleep 1; done
  return 1
}

# The partition queues sit behind a consistent-hash exchange, a plugin shipped with the broker and off by
# default. Enabled here where the broker is local; elsewhere the service's start-up says how.
enable_plugins() {
  if command -v rabbitmq-plugins >/dev/null 2>&1 && command -v rabbitmq-server >/dev/null 2>&1; then
    rabbitmq-plugins -q list -e rabbitmq_consistent_hash_exchange 2>/dev/null | grep -q consistent_hash \
      || rabbitmq-plugins -q enable rabbitmq_consistent_hash_exchange >/dev/null
  fi
  return 0
}

reachable && enable_plugins && exit 0

started=no
if ! "$upsell" check 2>&1 | grep -q "PostgreSQL.*not reachable" ; then :; elif command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
  echo "starting the local PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  started=yes
fi
if ! "$upsell" check 2>&1 | grep -q "RabbitMQ is not reachable"; then :; elif command -v rabbitmq-server >/dev/null 2>&1; then
  echo "starting the local RabbitMQ"
  rabbitmq-server -detached || true
  started=yes
fi
if [ "$started" = yes ] && wait_reachable 60; then enable_plugins; exit 0; fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "starting PostgreSQL and RabbitMQ with docker compose"
  docker compose -f deploy/compose.yaml up -d postgres rabbitmq
  wait_reachable 90 && exit 0
fi

"$upsell" check
cat >&2 <<'MSG'

PostgreSQL and RabbitMQ are needed. Either:
  - install them locally (Debian/Ubuntu: apt-get install postgresql rabbitmq-server) and run `make run` again,
  - or start a Docker engine and run `make run` again (deploy/compose.yaml starts both),
  - or point UPSELL_DATABASE_URL and UPSELL_AMQP_URL at servers you run.
MSG
exit 1
