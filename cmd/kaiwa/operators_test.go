package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

// TestTenantCommandsGoThroughTheCore runs the tenant commands that change
// something against MySQL and NATS: each records its event with the actor
// "cli", and a settings change is announced live (or, with the bus
// unreachable, stored all the same and said to be unannounced).
func TestTenantCommandsGoThroughTheCore(t *testing.T) {
	t.Parallel()
	dsn, natsURL := testenv.MySQL(t), testenv.NATS(t)
	env := map[string]string{"KAIWA_MYSQL_DSN": dsn, "KAIWA_NATS_URL": natsURL}
	tenant := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := runArgs(t, env, append([]string{"tenant"}, args...)...)
		if err != nil || stderr != "" {
			t.Fatalf("kaiwa tenant %s: %v %s", strings.Join(args, " "), err, stderr)
		}
		return stdout
	}

	b, err := bus.Connect(t.Context(), bus.Config{URL: natsURL, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	controls := make(chan kaiwa.Control, 8)
	sub, err := b.SubscribeTenants(func(c *kaiwa.Control) { controls <- *c })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	tenant("create", "acme", "--json")
	tenant("settings", "acme", "--set", `{"max_text_len":200}`)
	for _, kind := range []kaiwa.ControlKind{kaiwa.ControlSettings, kaiwa.ControlNGWords} {
		select {
		case c := <-controls:
			if c != (kaiwa.Control{Kind: kind, Tenant: "acme"}) {
				t.Errorf("control %+v, want %s for acme", c, kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s control", kind)
		}
	}
	tenant("rotate-key", "acme")
	var keys struct{ Keys []kaiwa.APIKey }
	if err := json.Unmarshal([]byte(tenant("keys", "acme", "--json")), &keys); err != nil || len(keys.Keys) != 2 {
		t.Fatalf("keys %+v: %v", keys, err)
	}
	tenant("revoke-key", "acme", "1")
	tenant("disable", "acme")

	// The bus unreachable: the settings are stored, and the operator told.
	env["KAIWA_NATS_URL"] = "nats://127.0.0.1:1"
	_, stderr, err := runArgs(t, env, "tenant", "settings", "acme", "--set", `{"max_text_len":300}`)
	if err != nil || !strings.Contains(stderr, "settings saved, but the servers were not told") {
		t.Errorf("settings without the bus: %v, stderr %q", err, stderr)
	}

	store, err := tenants.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if st, err := store.TenantSettings(t.Context(), "acme"); err != nil || st.MaxTextLen != 300 {
		t.Errorf("settings %+v: %v", st, err)
	}
	page, err := store.Events(t.Context(), "acme", kaiwa.EventQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(page.Events) - 1; i >= 0; i-- {
		e := page.Events[i]
		var detail struct{ Actor string }
		if err := json.Unmarshal(e.Detail, &detail); err != nil || detail.Actor != kaiwa.ActorCLI {
			t.Errorf("event %s %s: actor %q, want cli", e.Type, e.Detail, detail.Actor)
		}
		got = append(got, e.Type)
	}
	want := "tenant_created settings_changed key_added key_revoked tenant_disabled settings_changed"
	if strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
}
