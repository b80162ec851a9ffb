package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Missing skips t because a tool it needs is not installed (Node,
// Chromium, a build of the TypeScript SDK), saying what; with CI set it
// fails t instead, so that CI never passes without running everything.
// scripts/deps.sh test installs what the tests need.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI is set, so this fails (scripts/deps.sh test installs what is missing)", what)
	}
	t.Skipf("skipped: %s (scripts/deps.sh test installs what is missing; with CI set this fails)", what)
}

// ModuleRoot returns the directory of Kaiwa's go.mod, found from the
// working directory up.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = up
	}
}

// JSSDK returns node and the TypeScript SDK's directory (sdk/js) once the
// SDK is built and the node modules named are installed; otherwise it
// calls [Missing].
func JSSDK(t testing.TB, modules ...string) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "no node on PATH")
	}
	dir = filepath.Join(ModuleRoot(t), "sdk", "js")
	need := []string{"dist/index.js"}
	for _, m := range modules {
		need = append(need, filepath.Join("node_modules", m, "package.json"))
	}
	for _, f := range need {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			Missing(t, "sdk/js/"+f+" is missing (cd sdk/js && npm ci && npm run build)")
		}
	}
	return node, dir
}

// Chromium returns the Chromium that browser tests drive: $KAIWA_CHROMIUM,
// else Debian's /usr/bin/chromium; otherwise it calls [Missing].
func Chromium(t testing.TB) string {
	t.Helper()
	p := os.Getenv("KAIWA_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		Missing(t, "no Chromium at "+p+" (apt-get install chromium, or set KAIWA_CHROMIUM)")
	}
	return p
}

// ArtifactDir returns a directory for what a test keeps after it ends,
// such as screenshots: name under $KAIWA_TEST_ARTIFACTS when it is set,
// else under var/test-artifacts in the module root (git-ignored, like all
// of var/). Files from an earlier run are replaced by the next one's.
func ArtifactDir(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv("KAIWA_TEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join(ModuleRoot(t), "var", "test-artifacts")
	}
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: artifact directory: %v", err)
	}
	return dir
}
