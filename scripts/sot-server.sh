#!/usr/bin/env bash
# A real Nautobot (the source of truth the inventory tests read) from PyPI on Debian's Python,
# cached in /var/cache/care-agent-test/nautobot:
#   scripts/sot-server.sh prepare   venv + `nautobot-server migrate` once, kept as a pg_dump of the
#                                   migrated database (migrated.dump) that tests restore in seconds;
#                                   quick when the cache is there (install-deps.sh runs it)
#   scripts/sot-server.sh run PORT  a throwaway Nautobot on 127.0.0.1:PORT for trying things by hand
#                                   (token 0123456789abcdef0123456789abcdef01234567, user admin)
# The Swift tests start their own (Tests/TestSupport/NautobotHarness.swift) from the same cache.
set -euo pipefail
NAUTOBOT_VERSION=3.2.0
CACHE=${CARE_SOT_CACHE:-/var/cache/care-agent-test/nautobot}
VENV=$CACHE/venv
DUMP=$CACHE/migrated-$NAUTOBOT_VERSION.dump
PG=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
TOKEN=0123456789abcdef0123456789abcdef01234567
here=$(cd "$(dirname "$0")" && pwd)

write_config() { # DIR DBPORT DBNAME REDISPORT
    cat > "$1/nautobot_config.py" <<PY
from nautobot.core.settings import *  # noqa: F401,F403
from nautobot.core.settings_funcs import parse_redis_connection
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "care-agent-tests-only-not-a-secret-0123456789abcdefghijklmnop"
DATABASES = {"default": {"NAME": "$3", "USER": "postgres", "PASSWORD": "", "HOST": "127.0.0.1", "PORT": "$2",
                         "ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 0}}
_redis = "redis://127.0.0.1:$4/0"
CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": _redis,
                      "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"}}}
CELERY_BROKER_URL = _redis
CELERY_RESULT_BACKEND = _redis
CONSTANCE_REDIS_CONNECTION = _redis
MAX_PAGE_SIZE = 1000
INSTALLATION_METRICS_ENABLED = False
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_servers() { # DIR: postgres + redis in DIR; sets PGPORT REDISPORT
    local dir=$1
    chown postgres "$dir"
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG/initdb" -D "$dir/pg" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
    PGPORT=$(free_port); REDISPORT=$(free_port)
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
        -o "-p $PGPORT -h 127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off" start >/dev/null
    redis-server --port "$REDISPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
}

stop_servers() {
    local dir=$1
    [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$PG/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
}

prepare() {
    mkdir -p "$CACHE"
    if ! "$VENV/bin/nautobot-server" --version 2>/dev/null | grep -q "Nautobot version: $NAUTOBOT_VERSION"; then
        rm -rf "$VENV"
        /usr/bin/python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "nautobot==$NAUTOBOT_VERSION"
    fi
    [ -s "$DUMP" ] && return 0
    local dir
    dir=$(mktemp -d /tmp/care-nautobot-prepare.XXXXXX)
    trap "stop_servers $dir; rm -rf $dir" RETURN
    start_servers "$dir"
    "$PG/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE nautobot" postgres
    write_config "$dir" "$PGPORT" nautobot "$REDISPORT"
    export NAUTOBOT_ROOT=$dir/root
    mkdir -p "$NAUTOBOT_ROOT"
    echo "sot-server: migrating a fresh Nautobot $NAUTOBOT_VERSION database (once; cached in $DUMP)" >&2
    "$VENV/bin/nautobot-server" --config="$dir/nautobot_config.py" migrate --no-input >"$dir/migrate.log" 2>&1 || { tail -n 40 "$dir/migrate.log" >&2; return 1; }
    "$VENV/bin/nautobot-server" --config="$dir/nautobot_config.py" nbshell >"$dir/shell.log" 2>&1 <<PY || { tail -n 40 "$dir/shell.log" >&2; return 1; }
from nautobot.users.models import User, Token
u = User.objects.create_superuser("admin", "admin@example.net", "admin")
Token.objects.create(user=u, key="$TOKEN", write_enabled=True)
PY
    "$PG/pg_dump" -h 127.0.0.1 -p "$PGPORT" -U postgres -Fc -f "$DUMP.tmp" nautobot
    mv "$DUMP.tmp" "$DUMP"
}

run() {
    local port=${1:?usage: sot-server.sh run PORT}
    prepare
    local dir
    dir=$(mktemp -d /tmp/care-nautobot.XXXXXX)
    trap "stop_servers $dir; rm -rf $dir" EXIT
    start_servers "$dir"
    "$PG/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE nautobot" postgres
    "$PG/pg_restore" -h 127.0.0.1 -p "$PGPORT" -U postgres -d nautobot --no-owner "$DUMP"
    write_config "$dir" "$PGPORT" nautobot "$REDISPORT"
    export NAUTOBOT_ROOT=$dir/root
    mkdir -p "$NAUTOBOT_ROOT"
    echo "sot-server: Nautobot on http://127.0.0.1:$port/ (token $TOKEN); Ctrl-C stops it" >&2
    "$VENV/bin/nautobot-server" --config="$dir/nautobot_config.py" runserver --noreload "127.0.0.1:$port"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 prepare | run PORT" >&2; exit 2 ;;
esac
