package tenants

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// orphanGrams counts the index rows whose message the log no longer
// holds, or holds deleted.
func (s *Store) orphanGrams(t testing.TB) int {
	t.Helper()
	var n int
	must(t, s.db.QueryRow(`
		SELECT COUNT(*) FROM message_grams g LEFT JOIN messages m ON m.pk = g.msg_pk
		WHERE m.pk IS NULL OR m.deleted_at IS NOT NULL`).Scan(&n))
	return n
}

// gramRows counts the index rows of a tenant.
func (s *Store) gramRows(t testing.TB, tenant kaiwa.TenantID) int {
	t.Helper()
	var n int
	must(t, s.db.QueryRow("SELECT COUNT(*) FROM message_grams WHERE tenant_id = ?", tenant).Scan(&n))
	return n
}

func TestSearchIndexLeavesWithItsMessages(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	must(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{RetentionDays: 1}))

	at := func(m kaiwa.Message, age time.Duration) kaiwa.Message {
		m.TS = now.Add(-age).UnixMilli()
		return m
	}
	appendMsgs(t, s,
		at(msg("a", "old", 1, "lobby", "alice", "ギルド戦の準備"), 48*time.Hour),
		at(msg("a", "fresh", 2, "lobby", "bob", "ギルドで会おう"), 0),
		at(msg("a", "typo", 3, "lobby", "bob", "ギルドはどこ"), 0),
		at(msg("b", "other", 1, "lobby", "carol", "ギルド"), 0))
	for {
		n, err := s.IndexMessages(ctx, 2)
		must(t, err)
		if n == 0 {
			break
		}
	}
	found := func(tenant kaiwa.TenantID, q string) []string {
		t.Helper()
		page, err := s.Search(ctx, tenant, kaiwa.SearchQuery{Q: q})
		must(t, err)
		out := ids(page.Messages)
		slices.Sort(out)
		return out
	}
	if got := found("a", "ギルド"); !slices.Equal(got, []string{"fresh", "old", "typo"}) {
		t.Fatalf("a finds %v", got)
	}
	if got := found("b", "ギルド"); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("b finds %v", got)
	}
	indexed := s.gramRows(t, "a")

	// A deleted message takes its index rows with it.
	if existed, err := s.DeleteMessage(ctx, "a", "lobby", "typo", false); err != nil || !existed {
		t.Fatalf("DeleteMessage = %v, %v", existed, err)
	}
	if n := s.orphanGrams(t); n != 0 {
		t.Fatalf("%d index rows of deleted messages", n)
	}
	if n := s.gramRows(t, "a"); n >= indexed {
		t.Fatalf("a has %d index rows after a deletion, %d before", n, indexed)
	}

	// An edit replaces them; the purge removes those of what it purges,
	// and only the tenant's.
	edit := msg("a", "e1", 4, "lobby", "bob", "レイドで会おう")
	edit.Kind, edit.Target = kaiwa.KindEdit, "fresh"
	must(t, s.ApplyEdits(ctx, []kaiwa.Message{edit}))
	if got := found("a", "レイド"); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("after the edit a finds %v by its new text", got)
	}
	if got := found("a", "ギルドで"); len(got) != 0 {
		t.Fatalf("after the edit a finds %v by its old text", got)
	}
	st, err := s.Purge(ctx, now, 10)
	must(t, err)
	if st.Messages != 1 { // old; the others are younger than a's day
		t.Fatalf("Purge = %+v, want 1 message", st)
	}
	if n := s.orphanGrams(t); n != 0 {
		t.Fatalf("%d index rows of purged messages", n)
	}
	if got := found("a", "ギルド"); len(got) != 0 {
		t.Fatalf("after the purge a finds %v", got)
	}
	if got := found("b", "ギルド"); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("after a's purge b finds %v", got)
	}
	var grams int
	must(t, s.db.QueryRow("SELECT COUNT(*) FROM message_grams WHERE tenant_id = 'a' AND msg_pk <> (SELECT pk FROM messages WHERE tenant_id = 'a' AND id = 'fresh')").Scan(&grams))
	if grams != 0 {
		t.Fatalf("a keeps %d index rows of messages other than its one left", grams)
	}
}
