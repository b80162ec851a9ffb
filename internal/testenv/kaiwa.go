package testenv

import (
	"fmt"
	"math/rand/v2"
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
// free a moment ago. The port is below the kernel's ephemeral range
// (32768 and up on Linux), so that no outgoing connection takes it before
// the process it is for listens on it; a port the kernel picks (":0")
// comes from that range, which the tests' own clients also use.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		l.Close()
		return addr
	}
	t.Fatal("testenv: no free port in 20000-31999 after 200 tries")
	return ""
}
