package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

// TestAPIReadsLogsFromTheReplica: with --mysql-read-dsn, GET messages and
// GET events read the replica while everything else uses --mysql-dsn. The
// "replica" here is a database of its own holding a message and an event
// the primary does not, so the answers show which one was read.
func TestAPIReadsLogsFromTheReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primaryDSN, replicaDSN, natsURL := testenv.MySQL(t), testenv.MySQL(t), testenv.NATS(t)
	primary, err := tenants.Open(ctx, primaryDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	replica, err := tenants.Open(ctx, replicaDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	key, err := primary.CreateTenant(ctx, "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.AppendMessages(ctx, []kaiwa.Message{{Tenant: "acme", Channel: "world", ID: "e-1", Seq: 1, From: "alice", Text: "from the replica", TS: kaiwa.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := replica.AppendEvents(ctx, []kaiwa.Event{{Tenant: "acme", ID: "ev-1", Type: kaiwa.EventConnect, User: "alice", TS: kaiwa.Now()}}); err != nil {
		t.Fatal(err)
	}

	addr := testenv.FreeAddr(t)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := runArgsCtx(runCtx, map[string]string{"KAIWA_NATS_URL": natsURL}, "api", "--listen", addr,
			"--mysql-dsn", primaryDSN, "--mysql-read-dsn", replicaDSN, "--log-level", "error", "--heartbeat", "0")
		done <- err
	}()
	defer func() { cancel(); <-done }()
	get := func(path string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/api"+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		var resp *http.Response
		testenv.Eventually(t, "the API answers", 10*time.Second, func() bool {
			resp, err = http.DefaultClient.Do(req)
			return err == nil
		})
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return m
	}
	if m := get("/channels/world/messages"); !strings.Contains(toJSON(m), "from the replica") {
		t.Errorf("GET messages did not read the replica: %v", m)
	}
	if m := get("/events"); !strings.Contains(toJSON(m), "ev-1") {
		t.Errorf("GET events did not read the replica: %v", m)
	}
	if m := get("/settings"); m["rate_ops"] == nil {
		t.Errorf("GET settings (the primary): %v", m)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
