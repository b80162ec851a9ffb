#!/usr/bin/env bash
# Runs a command with KAIWA_TEST_MYSQL_DSN naming a MySQL server the tests
# may create databases on, and exits with the command's status.
#
# Usage: scripts/with-test-mysql.sh CMD [ARGS...]
#
# Where the server comes from, first match wins:
#   1. KAIWA_TEST_MYSQL_DSN, when set, is used as it is;
#   2. root without a password at 127.0.0.1:3306, when it answers;
#   3. a private mariadbd started for the command and stopped after it:
#      data in var/test-mysql (made on first use), TCP on 127.0.0.1:3307
#      (KAIWA_TEST_MYSQL_PORT), tuned for speed over durability.
#
# KAIWA_TEST_PRIVATE_MYSQL=1 skips 1 and 2 and always uses the private
# server (this is how the private path is tested on a machine that has a
# server on 3306).
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

say() { echo "with-test-mysql: $*" >&2; }

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

tcp_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

if [ -z "${KAIWA_TEST_PRIVATE_MYSQL:-}" ]; then
	if [ -n "${KAIWA_TEST_MYSQL_DSN:-}" ]; then
		exec "$@"
	fi
	if command -v mariadb-admin >/dev/null 2>&1; then
		probe() { mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
	else
		probe() { tcp_answers 127.0.0.1 3306; }
	fi
	if probe; then
		export KAIWA_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/'
		exec "$@"
	fi
	say "no MySQL server at 127.0.0.1:3306; starting a private one"
fi

# --- the private server -------------------------------------------------------
port=${KAIWA_TEST_MYSQL_PORT:-3307}
dir="$root_dir/var/test-mysql"
data="$dir/data"
pidfile="$dir/mysqld.pid"
errlog="$dir/error.log"

find_bin() {
	local n d
	for n in "$@"; do
		command -v "$n" 2>/dev/null && return 0
		for d in /usr/sbin /usr/bin; do
			[ -x "$d/$n" ] && {
				echo "$d/$n"
				return 0
			}
		done
	done
	return 1
}
mariadbd=$(find_bin mariadbd mysqld) || {
	say "mariadbd not found: run scripts/deps.sh test (or apt-get install mariadb-server)"
	exit 1
}
install_db=$(find_bin mariadb-install-db mysql_install_db) || {
	say "mariadb-install-db not found: run scripts/deps.sh test (or apt-get install mariadb-server)"
	exit 1
}
as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--user=root)

mkdir -p "$dir"

# A server left by an interrupted run: stop it, it may be half-configured.
if [ -f "$pidfile" ] && old=$(cat "$pidfile") && [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
	say "stopping the private server a previous run left (pid $old)"
	kill -TERM "$old" 2>/dev/null || true
	for _ in $(seq 1 300); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi
if tcp_answers 127.0.0.1 "$port"; then
	say "127.0.0.1:$port is taken by another program; set KAIWA_TEST_MYSQL_PORT to a free port"
	exit 1
fi

if [ ! -d "$data/mysql" ]; then
	say "initialising $data"
	rm -rf "$data.installing"
	if ! "$install_db" --no-defaults --datadir="$data.installing" --auth-root-authentication-method=normal \
		--skip-test-db --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
		--innodb-flush-method=nosync "${as_root[@]}" >"$dir/install.log" 2>&1; then
		say "mariadb-install-db failed:"
		tail -n 20 "$dir/install.log" >&2
		exit 1
	fi
	mv "$data.installing" "$data"
fi

: >"$errlog"
"$mariadbd" --no-defaults --datadir="$data" --port="$port" --bind-address=127.0.0.1 \
	--socket="$dir/mysqld.sock" --pid-file="$pidfile" --log-error="$errlog" \
	--skip-log-bin --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
	--innodb-flush-method=nosync --innodb-buffer-pool-size=256M \
	--innodb-buffer-pool-dump-at-shutdown=0 --innodb-buffer-pool-load-at-startup=0 \
	--max-connections=1000 --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
	"${as_root[@]}" </dev/null >>"$errlog" 2>&1 &
server=$!

stop_server() {
	if kill -0 "$server" 2>/dev/null; then
		say "stopping the private server"
		kill -TERM "$server" 2>/dev/null || true
		for _ in $(seq 1 600); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$server" 2>/dev/null || true
	fi
	wait "$server" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ready=
for _ in $(seq 1 600); do
	if ! kill -0 "$server" 2>/dev/null; then
		say "mariadbd exited while starting:"
		tail -n 20 "$errlog" >&2
		exit 1
	fi
	if [ -S "$dir/mysqld.sock" ] && tcp_answers 127.0.0.1 "$port"; then
		if ! command -v mariadb-admin >/dev/null 2>&1 ||
			mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
			ready=1
			break
		fi
	fi
	sleep 0.1
done
if [ -z "$ready" ]; then
	say "the private server did not answer on 127.0.0.1:$port within 60s:"
	tail -n 20 "$errlog" >&2
	exit 1
fi

export KAIWA_TEST_MYSQL_DSN="root@tcp(127.0.0.1:$port)/"
say "private MariaDB on 127.0.0.1:$port"
status=0
"$@" || status=$?
exit "$status"
