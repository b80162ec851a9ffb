#!/usr/bin/env bash
# A multi-host Kaiwa deployment on one machine: every host is a network
# namespace, set up from the deploy kit (deploy/) as docs/deploy.md says.
#
# Usage: scripts/cluster.sh COMMAND [ARGS]
#
#   up                  build the hosts and start everything (as root)
#   down                stop everything and remove the hosts
#   status              each host's units and pids, the NATS cluster's
#                       leaders, and kaiwa nodes
#   start HOST UNIT     start a unit ("kaiwa-ua@v1-0.service", "mariadb.service")
#   stop HOST UNIT      stop it as systemd would (its KillSignal, then SIGKILL)
#   kill HOST [UNIT]    SIGKILL the unit, or every process of the host (its
#                       runner too: it stays down until started again)
#   cut HOST            take the host off the cluster network (NATS, the API
#                       tier, MySQL); the front still reaches a UA host
#   restore HOST        put it back
#   exec HOST CMD...    run a command in the host's network namespace
#   pid HOST UNIT       the unit's main pid
#   env                 the cluster's addresses, as shell assignments
#
# The hosts (namespaces KAIWA_CLUSTER_NAME-HOST, "kw-ua-1"):
#
#   nats-1..3       kaiwa-nats (kaiwa nats --config: NATS 2.10+ of Kaiwa's
#                   build, JetStream, a 3-node cluster; streams at 3 replicas)
#   mysql-primary   MariaDB (the log writers' and the API's writes)
#   mysql-replica   MariaDB replicating it by GTID (the API's log reads)
#   api-1, api-2    kaiwa-api@v1, kaiwa-api@v2 (the directory: one queue
#                   group), kaiwa-logwriter (competing consumers), nginx
#   ua-1, ua-2      kaiwa-ua@v1-0, kaiwa-ua@v2-0 on unix sockets, nginx
#   (root)          the front: nginx on KAIWA_FRONT_LISTEN balancing over
#                   the UA hosts (/ws) and the API hosts (/api)
#
# Two bridges join them: the cluster network (every host; 10.231.2.0/24)
# and the edge network (the front and the UA and API hosts; 10.231.1.0/24).
# The root namespace has an address on both (.254), for the front and for
# tests; it forwards nothing between them.
#
# Each unit runs from the deploy kit's unit file, rendered for its host
# (the paths /etc/kaiwa, /run/kaiwa, /var/lib/kaiwa, /var/log/kaiwa moved
# under KAIWA_CLUSTER_DIR/HOST, /usr/local/bin/kaiwa the binary under
# test), by a small runner that does what systemd does with it:
# EnvironmentFile, Environment, the specifiers %i %H %%, ExecStartPre,
# ExecStart, RuntimeDirectory/StateDirectory, LimitNOFILE, KillSignal,
# and Restart=always (a unit that exits is started again after
# RestartSec; "kill" kills the runner too). Output: HOST/log/UNIT.log.
#
# Environment:
#   KAIWA_CLUSTER_DIR     state, configs, data and logs (default var/cluster;
#                         short: unix socket paths live under it)
#   KAIWA_BIN             the kaiwa binary (default bin/kaiwa)
#   KAIWA_CLUSTER_NAME    prefix of namespaces, bridges and links (default kw)
#   KAIWA_CLUSTER_SUBNET  the first two octets of both networks (default 10.231)
#   KAIWA_FRONT_LISTEN    the front's TLS address (default 127.0.0.1:9443)
#   KAIWA_NGINX           nginx (default: on PATH, or /usr/sbin/nginx)
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "cluster: $*" >&2; }
die() {
	say "$*"
	exit 1
}

R=${KAIWA_CLUSTER_DIR:-$root_dir/var/cluster}
state="$R/cluster.env"
# A running cluster's settings win over the environment.
if [ -f "$state" ]; then
	# shellcheck disable=SC1090
	. "$state"
fi
NAME=${NAME:-${KAIWA_CLUSTER_NAME:-kw}}
SUBNET=${SUBNET:-${KAIWA_CLUSTER_SUBNET:-10.231}}
FRONT=${FRONT:-${KAIWA_FRONT_LISTEN:-127.0.0.1:9443}}
BIN=${BIN:-${KAIWA_BIN:-$root_dir/bin/kaiwa}}
NGINX=${NGINX:-${KAIWA_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}}

CORE="$SUBNET.2"
EDGE="$SUBNET.1"
HOSTS=(nats-1 nats-2 nats-3 mysql-primary mysql-replica api-1 api-2 ua-1 ua-2)
declare -A IP=([nats-1]=1 [nats-2]=2 [nats-3]=3 [mysql-primary]=11 [mysql-replica]=12
	[api-1]=21 [api-2]=22 [ua-1]=31 [ua-2]=32)
declare -A UNITS=(
	[nats-1]="kaiwa-nats.service" [nats-2]="kaiwa-nats.service" [nats-3]="kaiwa-nats.service"
	[mysql-primary]="mariadb.service" [mysql-replica]="mariadb.service"
	[api-1]="kaiwa-api@v1.service kaiwa-api@v2.service kaiwa-logwriter.service kaiwa-nginx.service"
	[api-2]="kaiwa-api@v1.service kaiwa-api@v2.service kaiwa-logwriter.service kaiwa-nginx.service"
	[ua-1]="kaiwa-ua@v1-0.service kaiwa-ua@v2-0.service kaiwa-nginx.service"
	[ua-2]="kaiwa-ua@v1-0.service kaiwa-ua@v2-0.service kaiwa-nginx.service"
	[front]="kaiwa-front.service"
)
edge_host() { case $1 in api-* | ua-*) return 0 ;; esac; return 1; }
ns() { echo "$NAME-$1"; }
core_ip() { echo "$CORE.${IP[$1]}"; }
edge_ip() { echo "$EDGE.${IP[$1]}"; }
# veth names are at most 15 bytes: the host's index.
link_index() {
	local i
	for i in "${!HOSTS[@]}"; do [ "${HOSTS[$i]}" = "$1" ] && echo "$i" && return; done
	die "no host $1"
}
core_link() { echo "${NAME}c$(link_index "$1")"; }
edge_link() { echo "${NAME}e$(link_index "$1")"; }

# in HOST CMD...: runs CMD in the host's namespace (the front's is the root one).
in_host() {
	local host=$1
	shift
	if [ "$host" = front ]; then "$@"; else ip netns exec "$(ns "$host")" "$@"; fi
}

# --- rendering the deploy kit for a host ----------------------------------------

# The substitutions that make the kit's files this cluster's: host names
# to addresses, the paths under the host's directory, the passwords.
render() { # render SRC DST HOST
	local src=$1 dst=$2 host=$3 h
	local hr="$R/$host"
	# Host names first: the paths put in after them hold host names.
	local args=()
	for h in nats-1 nats-2 nats-3 mysql-primary mysql-replica; do
		args+=(-e "s#\\b$h\\b#$(core_ip "$h")#g")
	done
	for h in api-1 api-2 ua-1 ua-2; do
		args+=(-e "s#\\b$h:8443\\b#$(edge_ip "$h"):8443#g")
	done
	args+=(
		-e "s#/etc/kaiwa#$hr/etc/kaiwa#g"
		-e "s#/run/kaiwa#$hr/run/kaiwa#g"
		-e "s#/var/lib/kaiwa#$hr/var/lib/kaiwa#g"
		-e "s#/var/log/kaiwa#$hr/var/log/kaiwa#g"
		-e "s#/usr/local/bin/kaiwa#$BIN#g"
		-e "s#/usr/sbin/nginx#$NGINX#g"
		-e "s#CHANGE_ME_TOO#$REPL_PASSWORD#g"
		-e "s#CHANGE_ME#$DB_PASSWORD#g"
		-e "s#www-data#root#g"
	)
	mkdir -p "$(dirname "$dst")"
	sed "${args[@]}" "$src" >"$dst"
}

render_host() {
	local host=$1 hr="$R/$1" u
	mkdir -p "$hr"/{etc/kaiwa,etc/systemd/system,run/kaiwa,var/lib/kaiwa,var/log/kaiwa,log,pids}
	for u in ${UNITS[$host]}; do
		case $u in
		*@*) u="${u%%@*}@.service" ;;
		esac
		[ -f "$root_dir/deploy/systemd/$u" ] && render "$root_dir/deploy/systemd/$u" "$hr/etc/systemd/system/$u" "$host"
	done
	case $host in
	nats-*)
		render "$root_dir/deploy/nats/nats.conf" "$hr/etc/kaiwa/nats.conf" "$host"
		# This node's name; room for a machine shared by nine hosts.
		sed -i -e "s/^server_name: .*/server_name: $host/" \
			-e "s/max_file_store: .*/max_file_store: 4GB/" -e "s/max_memory_store: .*/max_memory_store: 256MB/" \
			"$hr/etc/kaiwa/nats.conf"
		;;
	api-* | ua-*)
		render "$root_dir/deploy/etc/kaiwa.env" "$hr/etc/kaiwa/kaiwa.env" "$host"
		render "$root_dir/deploy/etc/nginx.env" "$hr/etc/kaiwa/nginx.env" "$host"
		render "$root_dir/deploy/systemd/kaiwa-migrate.service" "$hr/etc/systemd/system/kaiwa-migrate.service" "$host"
		sed -i "s#^KAIWA_TLS_CERT=.*#KAIWA_TLS_CERT=$hr/etc/kaiwa/tls/edge.crt#; s#^KAIWA_TLS_KEY=.*#KAIWA_TLS_KEY=$hr/etc/kaiwa/tls/edge.key#" "$hr/etc/kaiwa/nginx.env"
		case $host in
		api-*)
			render "$root_dir/deploy/etc/api.env" "$hr/etc/kaiwa/api.env" "$host"
			sed -i -e "s/^KAIWA_UA_PER_VERSION=.*/KAIWA_UA_PER_VERSION=0/" -e "s/^KAIWA_NGINX_NO_API=.*/KAIWA_NGINX_NO_API=false/" "$hr/etc/kaiwa/nginx.env"
			;;
		ua-*) render "$root_dir/deploy/etc/ua.env" "$hr/etc/kaiwa/ua.env" "$host" ;;
		esac
		;;
	mysql-*)
		local role=${host#mysql-}
		mkdir -p "$hr/etc/mysql/mariadb.conf.d" "$hr/var/lib/mysql" "$hr/run/mysqld" "$hr/var/log/mysql"
		render "$root_dir/deploy/mysql/kaiwa-$role.cnf" "$hr/etc/mysql/mariadb.conf.d/60-kaiwa.cnf" "$host"
		render "$root_dir/deploy/mysql/setup-$role.sql" "$hr/etc/mysql/setup-$role.sql" "$host"
		# What Debian's my.cnf and mariadb.service give the server, then
		# the kit's file, then what nine hosts on one machine can afford.
		cat >"$hr/etc/mysql/my.cnf" <<-EOF
			[mariadbd]
			datadir = $hr/var/lib/mysql
			socket = $hr/run/mysqld/mysqld.sock
			pid-file = $hr/run/mysqld/mysqld.pid
			log-error = $hr/var/log/mysql/error.log
			user = root
			!include $hr/etc/mysql/mariadb.conf.d/60-kaiwa.cnf
			[mariadbd]
			innodb_buffer_pool_size = 128M
			innodb_log_file_size = 64M
			max_connections = 300
		EOF
		cat >"$hr/etc/systemd/system/mariadb.service" <<-EOF
			# Debian's mariadb.service, as far as the runner needs it.
			[Service]
			ExecStart=$MARIADBD --defaults-file=$hr/etc/mysql/my.cnf
			KillSignal=SIGTERM
			TimeoutStopSec=60
			Restart=always
			RestartSec=2
			LimitNOFILE=20000
		EOF
		;;
	front)
		render "$root_dir/deploy/nginx/front.conf" "$hr/etc/kaiwa/front.conf" "$host"
		render "$root_dir/deploy/nginx/ua-hosts.conf" "$hr/etc/kaiwa/front/ua-hosts.conf" "$host"
		render "$root_dir/deploy/nginx/api-hosts.conf" "$hr/etc/kaiwa/front/api-hosts.conf" "$host"
		sed -i "s#listen 443 ssl#listen $FRONT ssl#" "$hr/etc/kaiwa/front.conf"
		;;
	esac
}

# --- certificates ------------------------------------------------------------------

# The cluster's CA; each edge host's certificate names edge.kaiwa.internal
# (what the front checks) and its address; the front's names localhost and
# 127.0.0.1 for the clients on this machine.
make_certs() {
	local tls="$R/tls" h
	mkdir -p "$tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=Kaiwa cluster CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
	cert() { # cert NAME SAN
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
			-keyout "$tls/$1.key" -out "$tls/$1.csr" 2>/dev/null
		openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 30 \
			-extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2") -out "$tls/$1.crt" 2>/dev/null
	}
	for h in api-1 api-2 ua-1 ua-2; do
		cert "$h" "DNS:edge.kaiwa.internal,IP:$(edge_ip "$h")"
		mkdir -p "$R/$h/etc/kaiwa/tls"
		cp "$tls/$h.crt" "$R/$h/etc/kaiwa/tls/edge.crt"
		cp "$tls/$h.key" "$R/$h/etc/kaiwa/tls/edge.key"
	done
	cert front "DNS:localhost,IP:127.0.0.1,IP:${FRONT%:*}"
	mkdir -p "$R/front/etc/kaiwa/tls"
	cp "$tls/front.crt" "$tls/front.key" "$R/front/etc/kaiwa/tls/"
	cp "$tls/ca.crt" "$R/front/etc/kaiwa/tls/cluster-ca.crt"
}

# --- the unit runner -----------------------------------------------------------------

# unit_file HOST UNIT: the rendered unit file (a template for NAME@INST).
unit_file() {
	local u=$2
	case $u in *@*) u="${u%%@*}@.service" ;; esac
	echo "$R/$1/etc/systemd/system/$u"
}

# spec HOST UNIT TEXT: the systemd specifiers %i %I %H %n and %%, and $$.
spec() {
	local host=$1 unit=$2 s=$3 inst=
	case $unit in *@*) inst=${unit#*@} && inst=${inst%.service} ;; esac
	s=${s//%%/$'\x01'}
	s=${s//%i/$inst}
	s=${s//%I/$inst}
	s=${s//%H/$host}
	s=${s//%n/$unit}
	s=${s//$'\x01'/%}
	s=${s//\$\$/\$}
	printf '%s' "$s"
}

# unit_key HOST UNIT KEY: every value of KEY= in the unit file, one a line.
unit_key() {
	sed -n "s/^$3=//p" "$(unit_file "$1" "$2")"
}

# unit_env HOST UNIT: the unit's environment, one NAME=VALUE a line.
unit_env() {
	local host=$1 unit=$2 line f opt
	while IFS= read -r line; do
		case $line in
		EnvironmentFile=*)
			f=$(spec "$host" "$unit" "${line#EnvironmentFile=}")
			opt=
			[ "${f:0:1}" = - ] && opt=1 && f=${f:1}
			if [ -f "$f" ]; then
				grep -Ev '^[[:space:]]*([#;]|$)' "$f" | sed -E 's/^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$/\1=\2/'
			elif [ -z "$opt" ]; then
				die "$host $unit: EnvironmentFile $f is missing"
			fi
			;;
		Environment=*)
			spec "$host" "$unit" "${line#Environment=}" | sed -E 's/^"(.*)"$/\1/'
			echo
			;;
		esac
	done <"$(unit_file "$host" "$unit")"
}

# unit_dirs HOST UNIT: makes its RuntimeDirectory, StateDirectory and
# LogsDirectory.
unit_dirs() {
	local host=$1 unit=$2 d
	for d in $(unit_key "$host" "$unit" RuntimeDirectory); do mkdir -p "$R/$host/run/$d"; done
	for d in $(unit_key "$host" "$unit" StateDirectory); do mkdir -p "$R/$host/var/lib/$d"; done
	for d in $(unit_key "$host" "$unit" LogsDirectory); do mkdir -p "$R/$host/var/log/$d"; done
}

unit_start() {
	local host=$1 unit=$2
	local file
	file=$(unit_file "$host" "$unit")
	[ -f "$file" ] || die "$host has no unit $unit ($file)"
	local dir="$R/$host" log="$R/$host/log/$unit.log" pidf="$R/$host/pids/$unit.pid"
	if [ -s "$pidf.runner" ] && kill -0 "$(cat "$pidf.runner")" 2>/dev/null; then
		say "$host $unit is already running"
		return 0
	fi
	unit_dirs "$host" "$unit"
	local env=() line
	while IFS= read -r line; do [ -n "$line" ] && env+=("$line"); done < <(unit_env "$host" "$unit")
	local nofile restart pre cmd
	nofile=$(unit_key "$host" "$unit" LimitNOFILE | tail -n1)
	restart=$(unit_key "$host" "$unit" RestartSec | tail -n1)
	local base=(env -i "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=/root" "${env[@]}")
	[ -n "$nofile" ] && base+=(prlimit "--nofile=$nofile:$nofile" --)
	while IFS= read -r pre; do
		[ -z "$pre" ] && continue
		pre=$(spec "$host" "$unit" "$pre")
		local ignore=
		[ "${pre:0:1}" = - ] && ignore=1 && pre=${pre:1}
		echo "[runner] ExecStartPre=$pre" >>"$log"
		if ! in_host "$host" "${base[@]}" bash -c "exec $pre" >>"$log" 2>&1 && [ -z "$ignore" ]; then
			tail -n 20 "$log" >&2
			die "$host $unit: ExecStartPre failed: $pre"
		fi
	done < <(unit_key "$host" "$unit" ExecStartPre)
	cmd=$(spec "$host" "$unit" "$(unit_key "$host" "$unit" ExecStart | tail -n1)")
	if [ "$(unit_key "$host" "$unit" Type | tail -n1)" = oneshot ]; then
		echo "[runner] ExecStart=$cmd" >>"$log"
		in_host "$host" "${base[@]}" bash -c "exec $cmd" </dev/null >>"$log" 2>&1 ||
			die "$host $unit failed (see $log)"
		return 0
	fi
	rm -f "$pidf" "$pidf.runner" "$pidf.stop"
	# The runner: starts the unit, records its pid, and, as Restart=
	# says, starts it again after RestartSec when it exits, until "stop"
	# marks it stopped.
	local runner='
		echo $$ >"$PIDF.runner"
		while :; do
			"$@" &
			echo $! >"$PIDF"
			echo "[runner] started pid $!"
			wait $!
			rc=$?
			[ -e "$PIDF.stop" ] && exit 0
			case $MODE in
			always) ;;
			on-failure) [ "$rc" -ne 0 ] || exit 0 ;;
			*) echo "[runner] exited with status $rc"; exit 0 ;;
			esac
			echo "[runner] exited with status $rc; starting again in ${RESTART}s"
			sleep "$RESTART"
		done'
	local mode
	mode=$(unit_key "$host" "$unit" Restart | tail -n1)
	in_host "$host" env PIDF="$pidf" RESTART="${restart:-1}" MODE="${mode:-no}" setsid bash -c "$runner" runner \
		"${base[@]}" bash -c "exec $cmd" </dev/null >>"$log" 2>&1 &
	local i
	for i in $(seq 1 50); do [ -s "$pidf" ] && [ -s "$pidf.runner" ] && break; sleep 0.1; done
}

unit_pid() {
	local pidf="$R/$1/pids/$2.pid"
	[ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null && cat "$pidf"
}

unit_stop() {
	local host=$1 unit=$2 pidf="$R/$1/pids/$2.pid" sig timeout pid i
	sig=$(unit_key "$host" "$unit" KillSignal | tail -n1)
	timeout=$(unit_key "$host" "$unit" TimeoutStopSec | tail -n1)
	touch "$pidf.stop"
	if pid=$(unit_pid "$host" "$unit"); then
		kill "-${sig:-SIGTERM}" "$pid" 2>/dev/null || true
		for i in $(seq 1 $((${timeout:-30} * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	if [ -s "$pidf.runner" ]; then
		for i in $(seq 1 50); do kill -0 "$(cat "$pidf.runner")" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$(cat "$pidf.runner")" 2>/dev/null || true
	fi
	rm -f "$pidf" "$pidf.runner"
}

# unit_kill HOST UNIT: SIGKILL to the unit and its runner: it stays down.
unit_kill() {
	local pidf="$R/$1/pids/$2.pid"
	[ -s "$pidf.runner" ] && kill -KILL "$(cat "$pidf.runner")" 2>/dev/null || true
	[ -s "$pidf" ] && kill -KILL "$(cat "$pidf")" 2>/dev/null || true
	rm -f "$pidf" "$pidf.runner"
}

# host_kill HOST: SIGKILL to every process of the host, runners included.
host_kill() {
	local host=$1 f
	[ "$host" = front ] && die "the front lives in the root namespace: kill its unit instead"
	# The runners first, so that none sees its unit die and starts it again.
	for f in "$R/$host"/pids/*.pid.runner; do
		if [ -s "$f" ]; then kill -KILL "$(cat "$f")" 2>/dev/null || true; fi
	done
	ip netns pids "$(ns "$host")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	rm -f "$R/$host"/pids/*.pid "$R/$host"/pids/*.pid.runner
}

# --- waiting -------------------------------------------------------------------------

wait_for() { # wait_for SECONDS WHAT CMD...
	local secs=$1 what=$2 i
	shift 2
	for i in $(seq 1 $((secs * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	die "$what did not happen within ${secs}s"
}
sock_ok() { curl -sf --max-time 2 --unix-socket "$1" "http://localhost${2:-/healthz}"; }
nats_ok() { curl -sf --max-time 2 "http://$(core_ip "$1"):8222/healthz" | grep -q ok; }
mysql_ok() { mariadb --no-defaults -S "$R/$1/run/mysqld/mysqld.sock" -uroot -e 'SELECT 1'; }

# --- the network -------------------------------------------------------------------------

net_up() {
	local br h
	for br in "${NAME}-core" "${NAME}-edge"; do
		ip link add "$br" type bridge
		ip link set "$br" up
	done
	ip addr add "$CORE.254/24" dev "${NAME}-core"
	ip addr add "$EDGE.254/24" dev "${NAME}-edge"
	for h in "${HOSTS[@]}"; do
		ip netns add "$(ns "$h")"
		ip -n "$(ns "$h")" link set lo up
		ip link add "$(core_link "$h")" type veth peer name core0 netns "$(ns "$h")"
		ip link set "$(core_link "$h")" master "${NAME}-core" up
		ip -n "$(ns "$h")" addr add "$(core_ip "$h")/24" dev core0
		ip -n "$(ns "$h")" link set core0 up
		if edge_host "$h"; then
			ip link add "$(edge_link "$h")" type veth peer name edge0 netns "$(ns "$h")"
			ip link set "$(edge_link "$h")" master "${NAME}-edge" up
			ip -n "$(ns "$h")" addr add "$(edge_ip "$h")/24" dev edge0
			ip -n "$(ns "$h")" link set edge0 up
		fi
	done
}

net_down() {
	local h
	for h in "${HOSTS[@]}"; do
		ip link del "$(core_link "$h")" 2>/dev/null || true
		ip link del "$(edge_link "$h")" 2>/dev/null || true
		ip netns del "$(ns "$h")" 2>/dev/null || true
	done
	ip link del "${NAME}-core" 2>/dev/null || true
	ip link del "${NAME}-edge" 2>/dev/null || true
}

# --- up, down, status ----------------------------------------------------------------------

cmd_up() {
	[ "$(id -u)" -eq 0 ] || die "up needs root (network namespaces)"
	[ -x "$BIN" ] || die "$BIN is missing: make build (or set KAIWA_BIN)"
	[ -x "$NGINX" ] || die "nginx is missing (scripts/deps.sh cluster)"
	MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
	[ -x "$MARIADBD" ] || die "mariadbd is missing (scripts/deps.sh cluster)"
	command -v openssl >/dev/null || die "openssl is missing (scripts/deps.sh cluster)"
	if ip netns list | grep -q "^$NAME-"; then
		die "namespaces $NAME-* exist: scripts/cluster.sh down first"
	fi
	rm -rf "$R"
	mkdir -p "$R"
	DB_PASSWORD=$(openssl rand -hex 12)
	REPL_PASSWORD=$(openssl rand -hex 12)
	cat >"$state" <<-EOF
		NAME=$NAME
		SUBNET=$SUBNET
		FRONT=$FRONT
		BIN=$BIN
		NGINX=$NGINX
		MARIADBD=$MARIADBD
		DB_PASSWORD=$DB_PASSWORD
		REPL_PASSWORD=$REPL_PASSWORD
	EOF
	say "network: bridges $NAME-core ($CORE.0/24) and $NAME-edge ($EDGE.0/24), ${#HOSTS[@]} namespaces"
	net_up
	local h u
	for h in "${HOSTS[@]}" front; do render_host "$h"; done
	make_certs

	say "MySQL: primary and replica"
	for h in mysql-primary mysql-replica; do
		"$(command -v mariadb-install-db || echo /usr/bin/mariadb-install-db)" --defaults-file="$R/$h/etc/mysql/my.cnf" \
			--auth-root-authentication-method=normal --skip-test-db >"$R/$h/log/install.log" 2>&1 ||
			{
				tail -n 20 "$R/$h/log/install.log" >&2
				die "mariadb-install-db failed on $h"
			}
		unit_start "$h" mariadb.service
		wait_for 60 "MariaDB on $h" mysql_ok "$h"
	done
	mariadb --no-defaults -S "$R/mysql-primary/run/mysqld/mysqld.sock" -uroot <"$R/mysql-primary/etc/mysql/setup-primary.sql"
	mariadb --no-defaults -S "$R/mysql-replica/run/mysqld/mysqld.sock" -uroot <"$R/mysql-replica/etc/mysql/setup-replica.sql"

	say "NATS: three nodes"
	for h in nats-1 nats-2 nats-3; do unit_start "$h" kaiwa-nats.service; done
	for h in nats-1 nats-2 nats-3; do wait_for 60 "JetStream on $h" nats_ok "$h"; done

	say "schema: kaiwa-migrate on api-1"
	unit_start api-1 kaiwa-migrate.service

	for h in api-1 api-2 ua-1 ua-2; do
		say "$h: ${UNITS[$h]}"
		for u in ${UNITS[$h]}; do unit_start "$h" "$u"; done
	done
	for h in api-1 api-2; do
		wait_for 60 "the API on $h" sock_ok "$R/$h/run/kaiwa/api-v1.sock" /readyz
		wait_for 60 "the API on $h" sock_ok "$R/$h/run/kaiwa/api-v2.sock" /readyz
	done
	for h in ua-1 ua-2; do
		for u in v1-0 v2-0; do wait_for 60 "the UA $u on $h" sock_ok "$R/$h/run/kaiwa/ua-$u.sock" /readyz; done
	done
	say "front: $FRONT"
	unit_start front kaiwa-front.service
	wait_for 30 "the front" curl -sf --cacert "$R/tls/ca.crt" "https://$FRONT/v1/api/readyz"
	say "up: https://$FRONT (CA: $R/tls/ca.crt); scripts/cluster.sh status"
}

cmd_down() {
	local h u f
	if [ -d "$R" ]; then
		for f in "$R"/front/pids/*.pid; do
			if [ -e "$f" ]; then unit_stop front "$(basename "$f" .pid)"; fi
		done
		for h in "${HOSTS[@]}"; do
			if ip netns list | grep -q "^$(ns "$h")\b"; then host_kill "$h"; fi
		done
	fi
	net_down
	say "down (state kept in $R)"
}

cmd_status() {
	local h u pid
	printf '%-14s %-26s %s\n' HOST UNIT PID
	for h in "${HOSTS[@]}" front; do
		for u in ${UNITS[$h]}; do
			pid=$(unit_pid "$h" "$u" || true)
			printf '%-14s %-26s %s\n' "$h" "$u" "${pid:-down}"
		done
	done
	echo
	for h in nats-1 nats-2 nats-3; do
		curl -sf --max-time 2 "http://$(core_ip "$h"):8222/jsz?streams=true" |
			jq -r --arg h "$h" '"\($h): meta leader \(.meta_cluster.leader // "-"); " + ([.account_details[]?.stream_detail[]? | "\(.name) leader \(.cluster.leader // "-")"] | join(", "))' 2>/dev/null ||
			echo "$h: no answer"
	done
	echo
	KAIWA_NATS_URL="nats://$(core_ip nats-1):4222,nats://$(core_ip nats-2):4222,nats://$(core_ip nats-3):4222" "$BIN" nodes || true
}

cmd_env() {
	echo "KAIWA_CLUSTER_DIR=$R"
	echo "FRONT=$FRONT"
	echo "CA=$R/tls/ca.crt"
	echo "NATS_URL=nats://$(core_ip nats-1):4222,nats://$(core_ip nats-2):4222,nats://$(core_ip nats-3):4222"
	local h
	for h in "${HOSTS[@]}"; do
		echo "CORE_$(echo "$h" | tr 'a-z-' 'A-Z_')=$(core_ip "$h")"
	done
	echo "MYSQL_DSN=kaiwa:$DB_PASSWORD@tcp($(core_ip mysql-primary):3306)/kaiwa"
	echo "MYSQL_READ_DSN=kaiwa:$DB_PASSWORD@tcp($(core_ip mysql-replica):3306)/kaiwa"
}

cmd=${1:-}
shift || true
case $cmd in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
start) unit_start "$1" "$2" ;;
stop) unit_stop "$1" "$2" ;;
kill)
	if [ $# -ge 2 ]; then unit_kill "$1" "$2"; else host_kill "$1"; fi
	;;
pid) unit_pid "$1" "$2" ;;
cut) ip link set "$(core_link "$1")" down ;;
restore) ip link set "$(core_link "$1")" up ;;
exec)
	h=$1
	shift
	in_host "$h" "$@"
	;;
*)
	sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
