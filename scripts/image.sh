#!/usr/bin/env bash
# Builds Kaiwa's container image from deploy/Containerfile with buildah
# (or podman when there is no buildah), from a release binary: nothing is
# pulled, the image starts FROM scratch.
#
# Usage: scripts/image.sh [ARCH]     (default amd64; make release first)
#
# It stages the build context in a temporary directory: the static binary
# dist/kaiwa-linux-ARCH, the build machine's CA certificates
# (/etc/ssl/certs/ca-certificates.crt) and time zones (/usr/share/zoneinfo),
# and tags the image kaiwa:VERSION (VERSION: git describe, or $VERSION) and
# kaiwa:latest. It prints the tag it built.
set -euo pipefail

arch=${1:-amd64}
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "image: $*" >&2; }

version=${VERSION:-$(git -C "$root_dir" describe --tags --always --dirty 2>/dev/null || echo dev)}
bin="$root_dir/dist/kaiwa-linux-$arch"
[ -x "$bin" ] || {
	say "$bin is missing: run make release first"
	exit 1
}
if command -v buildah >/dev/null 2>&1; then
	build=(buildah bud)
elif command -v podman >/dev/null 2>&1; then
	build=(podman build)
else
	say "neither buildah nor podman is installed (scripts/deps.sh release installs buildah)"
	exit 1
fi
for f in /etc/ssl/certs/ca-certificates.crt /usr/share/zoneinfo/UTC; do
	[ -e "$f" ] || {
		say "$f is missing (apt-get install ca-certificates tzdata)"
		exit 1
	}
done

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/kaiwa"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
cp -rL /usr/share/zoneinfo "$ctx/zoneinfo"
tag="kaiwa:$version"
say "${build[*]} --arch $arch -t $tag (context: binary, CA certificates, zoneinfo)"
"${build[@]}" --arch "$arch" --os linux -f "$root_dir/deploy/Containerfile" -t "$tag" -t kaiwa:latest "$ctx" >&2
echo "$tag"
