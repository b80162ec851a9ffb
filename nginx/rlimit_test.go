package nginx_test

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/versions"
)

func TestNginxStaysWithinTheOpenFileLimit(t *testing.T) {
	t.Parallel()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max > 1<<17 {
		t.Skipf("the hard open-file limit %d is too high to exceed cheaply", lim.Max)
	}
	// Two files per worker connection would be over the hard limit.
	p := testenv.Nginx(t, nginx.Config{
		Registry: versions.Default(), Sockets: nginx.DirSockets(socketDir(t), 1),
		WorkerProcesses: 1, WorkerConnections: int(lim.Max/2) + 1,
	})
	// An answer means the worker has set its limit.
	resp, err := http.Get(p.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	elog, err := os.ReadFile(p.ErrorLogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, complaint := range []string{"setrlimit", "exceed open file resource limit"} {
		if strings.Contains(string(elog), complaint) {
			t.Errorf("nginx complains about its open-file limit (hard limit %d):\n%s", lim.Max, elog)
			break
		}
	}
}
