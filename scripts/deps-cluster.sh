# Sourced by scripts/deps.sh (with its helpers say, apt_has and
# apt_install, and $mode): what the release builds and the multi-host
# cluster need. Plain "make test" needs none of it.
#
#   release  file (the release check reads each binary's architecture);
#            qemu-user-static, to run the arm64 binary and one package's
#            tests under emulation; buildah, to build the container image
#            from deploy/Containerfile and run kaiwa version in it (with
#            crun). KAIWA_SKIP_QEMU=1 and KAIWA_SKIP_IMAGE=1 leave them
#            out: those checks then skip, saying why.
#   cluster  ip (iproute2: network namespaces, veth pairs, a bridge),
#            openssl (the cluster's CA and certificates), and the MariaDB
#            server binaries (a primary and a replica of their own);
#            nginx is checked by deps.sh itself.

if [ "$mode" = release ]; then
	command -v file >/dev/null 2>&1 || apt_install file
	if [ -z "${KAIWA_SKIP_QEMU:-}" ] && ! command -v qemu-aarch64-static >/dev/null 2>&1; then
		say "qemu-user-static is missing: the release check runs the arm64 binary under emulation"
		apt_install qemu-user-static
	fi
	if [ -z "${KAIWA_SKIP_IMAGE:-}" ] && ! command -v buildah >/dev/null 2>&1 && ! command -v podman >/dev/null 2>&1; then
		say "buildah is missing: the release check builds the container image with it"
		apt_install buildah crun
	fi
	exit 0
fi

if [ "$mode" = cluster ]; then
	command -v ip >/dev/null 2>&1 || apt_install iproute2
	command -v openssl >/dev/null 2>&1 || apt_install openssl
fi
