package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestNodesListsServers runs a UA and asks "kaiwa nodes" about it: it is
// listed with its role, protocol version, build and state, and once it has
// stopped, as stopped.
func TestNodesListsServers(t *testing.T) {
	t.Parallel()
	natsURL := testenv.NATS(t)
	env := map[string]string{"KAIWA_NATS_URL": natsURL}
	if out, _, err := runArgs(t, env, "nodes"); err != nil || !strings.Contains(out, "no node") {
		t.Fatalf("kaiwa nodes before any server: %q, %v", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := runArgsCtx(ctx, env, "ua", "--listen", "127.0.0.1:0", "--version", "v2",
			"--node-name", "host1/ua-v2-0", "--heartbeat", "100ms", "--log-level", "error")
		done <- err
	}()
	t.Cleanup(cancel)
	nodes := func() []bus.Node {
		t.Helper()
		out, stderr, err := runArgs(t, env, "nodes", "--json")
		if err != nil {
			t.Fatalf("kaiwa nodes --json: %v %s", err, stderr)
		}
		var ns []bus.Node
		if err := json.Unmarshal([]byte(out), &ns); err != nil {
			t.Fatalf("kaiwa nodes --json printed %q: %v", out, err)
		}
		return ns
	}
	testenv.Eventually(t, "the UA is listed", 10*time.Second, func() bool { return len(nodes()) == 1 })
	n := nodes()[0]
	if n.Name != "host1/ua-v2-0" || n.Role != "ua" || n.Protocol != "v2" || n.Build != buildVersion || n.State != bus.NodeServing || n.EveryMS != 100 {
		t.Errorf("node = %+v", n)
	}
	out, _, err := runArgs(t, env, "nodes")
	if err != nil || !strings.Contains(out, "host1/ua-v2-0") || !strings.Contains(out, "serving") || !strings.Contains(out, "LAST HEARTBEAT") {
		t.Errorf("kaiwa nodes = %q, %v", out, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ua: %v", err)
	}
	if n := nodes(); len(n) != 1 || n[0].State != bus.NodeStopped {
		t.Errorf("after stop: %+v", n)
	}
}
