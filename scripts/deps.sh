#!/usr/bin/env bash
# Makes sure a Debian/Ubuntu machine has what Kaiwa needs, installing what
# is missing with apt-get. Quiet when everything is there; idempotent.
#
# Usage: scripts/deps.sh run|test|release|cluster
#
#   run   Go, nginx, and the MariaDB server binaries unless KAIWA_MYSQL_DSN
#         names an existing database (kaiwa dev then starts no MariaDB).
#   test  Go, nginx, and the MariaDB server binaries when no MySQL server
#         answers at KAIWA_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/),
#         so scripts/with-test-mysql.sh can start a private one, or when CI
#         is set (the dev stack's own tests start a real mariadbd).
#   release, cluster  what make release and make test-cluster need besides
#         (scripts/deps-cluster.sh).
#
# Not root: apt-get runs through sudo when there is one; otherwise the
# script prints the exact command to run and fails.
set -euo pipefail

mode=${1:-}
case "$mode" in
run | test | release | cluster) ;;
*)
	echo "usage: $0 run|test|release|cluster" >&2
	exit 2
	;;
esac

say() { echo "deps: $*" >&2; }

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# --- Go -------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH="$PATH:/usr/local/go/bin"
		say "Go is in /usr/local/go/bin, which is not on PATH; the Makefile adds it, add it to your shell too"
	else
		say "no Go toolchain found (looked on PATH and in /usr/local/go/bin)."
		say "Install Go $(sed -n 's/^go //p' "$root_dir/go.mod") or newer into /usr/local/go, then run this again."
		exit 1
	fi
fi
want_go=$(sed -n 's/^go //p' "$root_dir/go.mod")
have_go=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
if [ -n "$want_go" ] && [ -n "$have_go" ] &&
	[ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -n1)" != "$want_go" ]; then
	say "Go $have_go is older than the go $want_go that go.mod requires; install a newer Go"
	exit 1
fi

# --- apt helpers ------------------------------------------------------------
sudo_cmd=()
can_install() {
	if ! command -v apt-get >/dev/null 2>&1; then
		say "this is not a Debian/Ubuntu machine (no apt-get): install $* with your package manager"
		return 1
	fi
	if [ "$(id -u)" -eq 0 ]; then
		sudo_cmd=()
	elif command -v sudo >/dev/null 2>&1; then
		sudo_cmd=(sudo)
	else
		say "need root to install $*; run as root:"
		say "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $*"
		return 1
	fi
}

apt_updated=
apt_install() {
	can_install "$@" || exit 1
	if [ -z "$apt_updated" ]; then
		say "apt-get update"
		"${sudo_cmd[@]}" apt-get update -qq
		apt_updated=1
	fi
	say "apt-get install $*"
	# A package's service may fail to start here (no init system, port taken)
	# while its binaries are installed fine: the callers check the binaries.
	"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
		say "apt-get install $* reported an error; checking for the binaries anyway"
}

# apt_has reports whether apt knows a package by that name.
apt_has() { apt-cache show "$1" >/dev/null 2>&1; }

. "$root_dir/scripts/deps-cs.sh" # test: mono-devel for the C# SDK (sdk/unity)
. "$root_dir/scripts/deps-cluster.sh" # release (exits here), cluster

# --- nginx ----------------------------------------------------------------
# is_exe reports whether one of its arguments is an executable regular file.
is_exe() {
	local p
	for p in "$@"; do
		[ -n "$p" ] && [ -f "$p" ] && [ -x "$p" ] && return 0
	done
	return 1
}
have_nginx() { is_exe "${KAIWA_NGINX:-}" "$(command -v nginx 2>/dev/null)" /usr/sbin/nginx; }
if ! have_nginx; then
	say "nginx is missing (the edge proxy of kaiwa dev and of the routing tests)"
	can_install nginx || exit 1
	if [ -z "$apt_updated" ]; then
		say "apt-get update"
		"${sudo_cmd[@]}" apt-get update -qq
		apt_updated=1
	fi
	if apt_has nginx-light; then apt_install nginx-light; else apt_install nginx; fi
	have_nginx || {
		say "nginx still not found after installing it"
		exit 1
	}
fi

# --- MariaDB server binaries -------------------------------------------------
have_mariadb() {
	is_exe "$(command -v mariadbd 2>/dev/null)" /usr/sbin/mariadbd &&
		is_exe "$(command -v mariadb-install-db 2>/dev/null)" /usr/bin/mariadb-install-db
}

# mysql_answers reports whether a MySQL server accepts TCP connections at the
# host:port of a go-sql-driver DSN (user[:pass]@tcp(host:port)/db), or has
# the unix socket of a unix(...) DSN.
mysql_answers() {
	local dsn=$1 addr host port
	case "$dsn" in
	*@unix\(*)
		addr=${dsn#*@unix(}
		addr=${addr%%)*}
		[ -S "$addr" ]
		return
		;;
	*@tcp\(*)
		addr=${dsn#*@tcp(}
		addr=${addr%%)*}
		;;
	*) addr=127.0.0.1:3306 ;;
	esac
	host=${addr%:*}
	port=${addr##*:}
	[ "$host" = "$addr" ] && port=3306
	timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

need_mariadb=
case "$mode" in
run)
	[ -z "${KAIWA_MYSQL_DSN:-}" ] && need_mariadb="kaiwa dev starts a private MariaDB (KAIWA_MYSQL_DSN is empty)"
	;;
cluster)
	need_mariadb="the cluster runs a MariaDB primary and replica of its own"
	;;
test)
	test_dsn=${KAIWA_TEST_MYSQL_DSN:-"root@tcp(127.0.0.1:3306)/"}
	if [ -n "${KAIWA_TEST_PRIVATE_MYSQL:-}" ]; then
		need_mariadb="KAIWA_TEST_PRIVATE_MYSQL asks for a private test server"
	elif ! mysql_answers "$test_dsn"; then
		need_mariadb="no MySQL server answers at $test_dsn; the tests start a private one"
	elif [ -n "${CI:-}" ]; then
		need_mariadb="CI runs the dev stack's MariaDB test"
	fi
	;;
esac
if [ -n "$need_mariadb" ] && ! have_mariadb; then
	say "MariaDB server binaries are missing: $need_mariadb"
	apt_install mariadb-server
	have_mariadb || {
		say "mariadbd still not found after installing mariadb-server"
		exit 1
	}
fi
if [ "$mode" != cluster ]; then
	"$root_dir/scripts/deps-js.sh" "$mode" # the TypeScript SDK: Node, npm ci, its build; for test, Chromium
fi
exit 0
