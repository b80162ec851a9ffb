package tenants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestPurge(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	day := 24 * time.Hour

	// Retention: a keeps 1 day, b the default 90, c 30.
	retention := map[kaiwa.TenantID]int{"a": 1, "b": 0, "c": 30}
	for tenant, days := range retention {
		newTenant(t, s, tenant)
		must(t, s.SetTenantSettings(ctx, tenant, kaiwa.Settings{RetentionDays: days}))
	}
	// Each tenant logs 4 messages and 4 events at each age, the same ids
	// in every tenant; one message is exactly at a's cutoff.
	ages := []time.Duration{day / 2, 2 * day, 31 * day, 91 * day}
	var msgs []kaiwa.Message
	var events []kaiwa.Event
	for tenant := range retention {
		for _, age := range ages {
			for i := range 4 {
				id := fmt.Sprintf("%dh-%d", age/time.Hour, i)
				ts := now.Add(-age).UnixMilli()
				m := msg(tenant, id, uint64(len(msgs)+1), "lobby", "alice", "x")
				m.TS = ts
				msgs = append(msgs, m)
				events = append(events, kaiwa.Event{Tenant: tenant, ID: id, Type: kaiwa.EventJoin, User: "alice", Channel: "lobby", TS: ts})
			}
		}
		edge := msg(tenant, "edge", uint64(len(msgs)+1), "lobby", "alice", "x")
		edge.TS = now.Add(-day).UnixMilli()
		msgs = append(msgs, edge)
	}
	appendMsgs(t, s, msgs...)
	must(t, s.AppendEvents(ctx, events))
	// An old message of a deleted (its tombstone goes with it), and a
	// fresh tombstone for a message not logged yet (it stays).
	if _, err := s.DeleteMessage(ctx, "a", "lobby", "744h-0", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMessage(ctx, "a", "lobby", "on-its-way", true); err != nil {
		t.Fatal(err)
	}

	// Tokens: expired beyond the grace (purged), within it (kept, so that
	// its client hears token_expired), and live.
	issueAt := func(tenant kaiwa.TenantID, at time.Time, ttl time.Duration) string {
		s.SetClock(func() time.Time { return at })
		defer func() { s.SetClock(nil) }()
		return issue(t, s, tenant, kaiwa.TokenRequest{User: "alice", TTL: ttl}).Token
	}
	gone := issueAt("a", now.Add(-3*day), time.Hour)
	goneB := issueAt("b", now.Add(-2*day), time.Hour)
	graced := issueAt("a", now.Add(-2*time.Hour), time.Hour)
	live := issueAt("c", now, time.Hour)

	// Sanctions: ended (purged), until lifted and still running (kept).
	for i, until := range []time.Time{now.Add(-time.Hour), now, {}, now.Add(time.Hour), now.Add(-day)} {
		tenant := []kaiwa.TenantID{"a", "b", "c"}[i%3]
		must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: tenant, User: fmt.Sprint("u", i), Kind: kaiwa.SanctionMute, Until: until}))
	}

	// A cancelled context purges nothing.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Purge(cancelled, now, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("Purge with a cancelled context: %v", err)
	}
	if n := s.countRows(t, "messages"); n != len(msgs)+1 {
		t.Fatalf("%d messages after a cancelled purge, want %d", n, len(msgs)+1)
	}

	st, err := s.Purge(ctx, now, 3)
	must(t, err)
	// a purges 3 ages (12 messages, the tombstone among them), c 2 ages
	// (8), b 1 age (4); events likewise.
	wantStats := PurgeStats{Tenants: 3, Messages: 24, Events: 24, Tokens: 2, Sanctions: 3}
	// Every DELETE removes at most 3 rows: ceil(rows/3) per tenant and
	// table, the tokens' ceil(2/3), and the sanctions' statements until
	// one removes fewer than 3.
	wantStats.Statements = 2*(4+3+2) + 1 + 2
	if st != wantStats {
		t.Fatalf("Purge = %+v, want %+v", st, wantStats)
	}

	kept := func(tenant kaiwa.TenantID) []string {
		t.Helper()
		page, err := s.Messages(ctx, tenant, kaiwa.MessageQuery{Limit: 500})
		must(t, err)
		out := ids(page.Messages)
		slices.Sort(out)
		return out
	}
	want := map[kaiwa.TenantID][]string{
		"a": {"12h-0", "12h-1", "12h-2", "12h-3", "edge"},
		"b": {"12h-0", "12h-1", "12h-2", "12h-3", "48h-0", "48h-1", "48h-2", "48h-3", "744h-0", "744h-1", "744h-2", "744h-3", "edge"},
		"c": {"12h-0", "12h-1", "12h-2", "12h-3", "48h-0", "48h-1", "48h-2", "48h-3", "edge"},
	}
	for tenant, w := range want {
		if got := kept(tenant); !slices.Equal(got, w) {
			t.Errorf("%s keeps messages %v, want %v", tenant, got, w)
		}
		page, err := s.Events(ctx, tenant, kaiwa.EventQuery{Limit: 500})
		must(t, err)
		got := eventIDs(page.Events)
		slices.Sort(got)
		if w := slices.DeleteFunc(slices.Clone(w), func(id string) bool { return id == "edge" }); !slices.Equal(got, w) {
			t.Errorf("%s keeps events %v, want %v", tenant, got, w)
		}
	}
	// The fresh tombstone still hides the message when it arrives.
	appendMsgs(t, s, msg("a", "on-its-way", 9999, "lobby", "alice", "late"))
	if got := kept("a"); slices.Contains(got, "on-its-way") {
		t.Fatal("a purged tombstone let a deleted message back")
	}

	for _, tok := range []string{gone, goneB} {
		_, err := s.ResolveToken(ctx, tok)
		wantCode(t, err, kaiwa.CodeUnauthorized)
	}
	_, err = s.ResolveToken(ctx, graced)
	wantCode(t, err, kaiwa.CodeTokenExpired)
	if _, err := s.ResolveToken(ctx, live); err != nil {
		t.Fatalf("the live token was purged: %v", err)
	}
	if n := s.countRows(t, "sanctions"); n != 2 {
		t.Fatalf("%d sanctions left, want 2", n)
	}

	// Nothing is left to purge.
	st, err = s.Purge(ctx, now, 0)
	must(t, err)
	if st != (PurgeStats{Tenants: 3, Statements: 1}) {
		t.Fatalf("second Purge = %+v", st)
	}
}
