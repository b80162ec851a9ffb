#!/usr/bin/env bash
# Builds the C# SDK (sdk/unity) with Mono's mcs, for its tests:
#
#   OUT/Kaiwa.dll             the SDK (sdk/unity/Runtime)
#   OUT/Kaiwa.Tests.exe       its unit tests (sdk/unity/Tests~/Unit)
#   OUT/KaiwaConformance.exe  its conformance runner (sdk/unity/Tests~/Conformance)
#   OUT/KaiwaSample.dll       the package's sample (sdk/unity/Samples~), against
#                             a stub of the UnityEngine types it uses, so that
#                             a change of the SDK's API cannot break it unseen
#
# Usage: scripts/build-cs.sh [OUT]   (default bin/cs)
#
# Each output is rebuilt only when one of its inputs (or this script) is
# newer. Warnings fail the build. Unity compiles the package's sources
# itself; these assemblies are for the tests, and are never committed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/bin/cs}
sdk=$root/sdk/unity
self=$root/scripts/build-cs.sh

if ! command -v mcs >/dev/null 2>&1; then
	echo "build-cs: mcs not found; install Mono (Debian: apt-get install mono-devel, which scripts/deps.sh test does)" >&2
	exit 1
fi
mkdir -p "$out"

# build OUTPUT TARGET REFS DEFINES -- SOURCES...: compiles SOURCES with REFS
# (a comma-separated list of assemblies) and DEFINES (a comma-separated list
# of symbols), "-" for none, into OUTPUT, unless it is newer than all of them.
build() {
	local output=$1 target=$2 refs=$3 defines=$4
	shift 5
	[ $# -gt 0 ] || return 0 # nothing to build (yet)
	local inputs=("$@" "$self")
	local r
	local -a refargs=(-r:System.dll -r:System.Core.dll)
	if [ "$refs" != - ]; then
		IFS=, read -ra rs <<<"$refs"
		for r in "${rs[@]}"; do
			refargs+=("-r:$r")
			[ -f "$r" ] && inputs+=("$r")
		done
	fi
	[ "$defines" != - ] && refargs+=("-define:${defines//,/;}")
	if [ -f "$output" ] && [ -z "$(find "${inputs[@]}" -newer "$output" -print -quit)" ]; then
		return 0
	fi
	echo "build-cs: mcs -> ${output#"$root"/}" >&2
	local tmp
	tmp=$(mktemp -d "$out/.build.XXXXXX")
	local name
	name=$(basename "$output")
	if ! mcs -nologo -target:"$target" -out:"$tmp/$name" -debug -optimize+ -warn:4 -warnaserror+ \
		-nowarn:1591 "${refargs[@]}" "$@"; then
		rm -rf "$tmp"
		return 1
	fi
	mv -f "$tmp/$name" "$output"
	[ -f "$tmp/$name.mdb" ] && mv -f "$tmp/$name.mdb" "$output.mdb"
	rm -rf "$tmp"
}

# Mono.Cecil (from Mono's GAC: Debian's libmono-cecil-private-cil, which
# mono-devel depends on) lets a unit test read which types Kaiwa.dll uses;
# without it that test is skipped.
cecil=$(find /usr/lib/mono/gac/Mono.Cecil -name Mono.Cecil.dll 2>/dev/null | sort -V | tail -n 1)
unit_refs=$out/Kaiwa.dll unit_defines=-
if [ -n "$cecil" ]; then
	unit_refs+=",$cecil" unit_defines=KAIWA_CECIL
fi

shopt -s nullglob
build "$out/Kaiwa.dll" library - - -- "$sdk"/Runtime/*.cs
build "$out/Kaiwa.Tests.exe" exe "$unit_refs" "$unit_defines" -- "$sdk"/Tests~/Unit/*.cs
build "$out/KaiwaConformance.exe" exe "$out/Kaiwa.dll,System.Net.Http.dll" - -- "$sdk"/Tests~/Conformance/*.cs
build "$out/UnityEngine.dll" library - - -- "$sdk"/Tests~/UnityStub/*.cs
build "$out/KaiwaSample.dll" library "$out/Kaiwa.dll,$out/UnityEngine.dll" - -- "$sdk"/Samples~/*/*.cs
