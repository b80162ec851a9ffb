package main

import (
	"context"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

func TestBenchPublishViaFlags(t *testing.T) {
	stdout, _, _ := runArgs(t, nil, "bench", "-h")
	if !strings.Contains(stdout, "--publish-via api") {
		t.Errorf("kaiwa bench -h does not describe --publish-via:\n%s", stdout)
	}
	_, stderr, _ := runArgs(t, nil, "bench", "fanout", "-h")
	for _, flag := range []string{"-publish-via", "-api-concurrency", "KAIWA_BENCH_PUBLISH_VIA"} {
		if !strings.Contains(stderr, flag) {
			t.Errorf("kaiwa bench fanout -h does not list %s", flag)
		}
	}
	api := "http://127.0.0.1:1/v1/api"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"dm", "--publish-via", "api", "--api", api, "--api-key", "k"}, "fanout and room"},
		{[]string{"fanout", "--publish-via", "nats"}, "want ws or api"},
		{[]string{"fanout", "--publish-via", "api"}, "needs --api"},
		{[]string{"room", "--publish-via", "api", "--api", api}, "--api-key"},
		{[]string{"fanout", "--mysql-dsn", "root@tcp(127.0.0.1:1)/x", "--api", api}, "not both"},
	} {
		_, _, err := runArgs(t, nil, append([]string{"bench"}, tt.args...)...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("kaiwa bench %s: %v, want a usage error containing %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

func TestBenchMakesAndRevokesItsAPIKey(t *testing.T) {
	dsn := testenv.MySQL(t)
	// Nothing answers at the UA or the API: the run sets up in MySQL,
	// adds its key, fails to connect, and revokes the key.
	_, _, err := runArgs(t, nil, "bench", "fanout", "--mysql-dsn", dsn, "--quiet",
		"--url", "ws://127.0.0.1:1/v1/ws", "--conns", "2", "--channels", "1", "--rate", "1",
		"--publish-via", "api", "--api", "http://127.0.0.1:1/v1/api")
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("bench against nothing: %v", err)
	}
	store, err := tenants.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := store.APIKeys(context.Background(), kaiwa.TenantID("bench"))
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's own key, and the run's, revoked.
	if len(keys) != 2 || !keys[0].RevokedAt.IsZero() || keys[1].RevokedAt.IsZero() {
		t.Fatalf("keys after the run: %+v", keys)
	}
}
