#!/usr/bin/env bash
# Makes sure the TypeScript SDK (sdk/js) is ready: its node modules
# installed (npm ci) and the SDK built (npm run build: dist/, and the copy
# the demo page imports, demo/kaiwa/). Quiet when everything is there;
# idempotent.
# scripts/deps.sh runs it; it runs alone too.
#
# Usage: scripts/deps-js.sh build|run|test
#
#   build  npm ci and npm run build when they are due; without npm, says
#          so and does nothing (make build).
#   run    Node and npm (Debian's nodejs and npm) when missing, then build.
#   test   as run, and Debian's chromium for the SDK's browser tests, when
#          neither /usr/bin/chromium nor $KAIWA_CHROMIUM is there, and
#          fonts-noto-cjk when no Japanese font is installed (the web
#          console's screenshots).
#
# Not root: apt-get runs through sudo when there is one; otherwise the
# script prints the exact command to run and fails.
set -euo pipefail

mode=${1:-}
case "$mode" in
build | run | test) ;;
*)
	echo "usage: $0 build|run|test" >&2
	exit 2
	;;
esac

say() { echo "deps: $*" >&2; }

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sdk=$root_dir/sdk/js

apt_updated=
apt_install() {
	local sudo_cmd=()
	if ! command -v apt-get >/dev/null 2>&1; then
		say "this is not a Debian/Ubuntu machine (no apt-get): install $* with your package manager"
		exit 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			say "need root to install $*; run as root:"
			say "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $*"
			exit 1
		fi
		sudo_cmd=(sudo)
	fi
	if [ -z "$apt_updated" ]; then
		say "apt-get update"
		"${sudo_cmd[@]}" apt-get update -qq
		apt_updated=1
	fi
	say "apt-get install $*"
	"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Node and npm -------------------------------------------------------------
if [ "$mode" != build ]; then
	if ! command -v node >/dev/null 2>&1; then
		say "Node.js is missing (the TypeScript SDK's build and tests)"
		apt_install nodejs
	fi
	if ! command -v npm >/dev/null 2>&1; then
		say "npm is missing (the TypeScript SDK's modules)"
		apt_install npm
	fi
	major=$(node -p 'process.versions.node.split(".")[0]')
	if [ "$major" -lt 20 ]; then
		say "Node $(node --version) is older than 20, the oldest the SDK supports; its tests may fail: install Node 20 or newer"
	fi
elif ! command -v npm >/dev/null 2>&1; then
	say "no npm: the TypeScript SDK (sdk/js) and its demo page (/demo/) are not built; scripts/deps.sh run installs Node"
	exit 0
fi

# --- Chromium -----------------------------------------------------------------
if [ "$mode" = test ]; then
	chromium=${KAIWA_CHROMIUM:-/usr/bin/chromium}
	if [ ! -x "$chromium" ]; then
		say "Chromium is missing at $chromium (the SDK's browser conformance run and the demo test)"
		apt_install chromium
		[ -x /usr/bin/chromium ] || {
			say "chromium still not found after installing it"
			exit 1
		}
	fi
	# Japanese text in the screenshots of the web console's test.
	if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
		say "no Japanese font (the web console's screenshots would show boxes)"
		apt_install fonts-noto-cjk
	fi
fi

# --- the SDK's modules and build ------------------------------------------------
cd "$sdk"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	say "npm ci in sdk/js (typescript, ws, playwright-core: exact versions from package-lock.json; no browser download)"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2
fi
if [ ! -f dist/index.js ] || [ ! -f demo/kaiwa/index.js ] ||
	[ -n "$(find src package.json tsconfig.json -newer dist/index.js 2>/dev/null | head -n1)" ]; then
	say "npm run build in sdk/js (tsc to dist/, copied to demo/kaiwa/ for the demo page)"
	npm run --silent build >&2
fi
exit 0
