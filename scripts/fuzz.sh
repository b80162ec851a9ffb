#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzXxx in a _test.go file)
# for FUZZTIME each (default 20s), one after the other; stops at the first
# failure, whose failing input go test writes under testdata/fuzz.
#
# Usage: scripts/fuzz.sh [PACKAGE_DIR...]   (default: the whole module)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}

dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(.)

found=0
while IFS= read -r file; do
	pkg="./$(dirname "${file#./}")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		found=$((found + 1))
		echo "fuzz: $target in $pkg for $FUZZTIME"
		"$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg"
	done
done < <(grep -rl --include='*_test.go' --exclude-dir=var --exclude-dir=bin --exclude-dir=.git '^func Fuzz' "${dirs[@]}" | sort)

if [ "$found" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $found targets passed"
