package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildKaiwa builds the kaiwa binary into dir and returns its path. It is
// for a TestMain of tests that run kaiwa as processes; the go tool's
// output goes to stderr.
func BuildKaiwa(dir string) (string, error) {
	bin := filepath.Join(dir, "kaiwa")
	build := exec.Command("go", "build", "-o", bin, "github.com/kaiwa-chat/kaiwa/cmd/kaiwa")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	return bin, build.Run()
}

// RunWithKaiwa is the body of a TestMain whose tests run kaiwa as
// processes: it builds the binary into a temporary directory (or takes the
// one $KAIWA_TEST_BIN names), sets *bin to its path, runs the tests and
// removes what it built. It returns the exit code for os.Exit.
func RunWithKaiwa(m *testing.M, bin *string) int {
	if *bin = os.Getenv("KAIWA_TEST_BIN"); *bin != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kaiwa-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = BuildKaiwa(dir); err != nil {
		fmt.Fprintln(os.Stderr, "build kaiwa:", err)
		return 1
	}
	return m.Run()
}

// FreeAddr returns a loopback address ("127.0.0.1:PORT") whose port was
// free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: pick a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
