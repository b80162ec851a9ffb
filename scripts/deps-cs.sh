# Sourced by scripts/deps.sh (with its helpers say and apt_install, and
# $mode): what the C# SDK (sdk/unity) needs. Its tests compile the SDK, its
# unit tests and its conformance runner with mcs and run them with mono,
# both from Debian's mono-devel (Mono 6.8). Only "test" needs them; nothing
# else in Kaiwa does.
#
# KAIWA_SKIP_CS=1 installs nothing: the C# tests then skip, saying why
# (unless CI is set, where they fail).

have_mono() { command -v mono >/dev/null 2>&1 && command -v mcs >/dev/null 2>&1; }

if [ "$mode" = test ] && [ -z "${KAIWA_SKIP_CS:-}" ] && ! have_mono; then
	say "mono and mcs are missing: the C# SDK's tests (sdk/unity) build and run with them"
	apt_install mono-devel
	have_mono || {
		say "mono or mcs still not found after installing mono-devel"
		exit 1
	}
fi
