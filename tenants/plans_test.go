package tenants

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// plan is one row of EXPLAIN's output.
type plan struct {
	table, typ, key, extra string
}

// explain returns the plan of a query over a single table.
func (s *Store) explain(t *testing.T, query string, args ...any) plan {
	t.Helper()
	plans := s.explainAll(t, query, args...)
	if len(plans) != 1 {
		t.Fatalf("EXPLAIN %s: %d rows, want 1", query, len(plans))
	}
	return plans[0]
}

// explainAll returns the plan of a query, one row per table in the order
// they are read.
func (s *Store) explainAll(t *testing.T, query string, args ...any) []plan {
	t.Helper()
	rows, err := s.db.Query("EXPLAIN "+query, args...)
	must(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	must(t, err)
	var plans []plan
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		must(t, rows.Scan(ptrs...))
		var p plan
		for i, c := range cols {
			switch c {
			case "table":
				p.table = vals[i].String
			case "type":
				p.typ = vals[i].String
			case "key":
				p.key = vals[i].String
			case "Extra":
				p.extra = vals[i].String
			}
		}
		plans = append(plans, p)
	}
	must(t, rows.Err())
	return plans
}

// TestSessionTokensReadByHash checks that a batch of session lookups reads
// its tokens first, by their hashes: started from the tenant, the
// optimizer can read every token of the tenant through the (tenant, user)
// index and test each hash, which it did after a bulk issue of 10,000.
func TestSessionTokensReadByHash(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	newTenant(t, s, "a")
	const tokens = 3000
	var hashes []any
	for start := 0; start < tokens; start += 500 {
		var q strings.Builder
		var args []any
		q.WriteString(`INSERT INTO user_tokens
			(tenant_id, user_id, name, token_hash, join_prefixes, publish_prefixes, expires_at, created_at) VALUES `)
		for i := start; i < start+500; i++ {
			if i > start {
				q.WriteString(",")
			}
			q.WriteString("('a', ?, '', ?, '[]', '[]', NOW() + INTERVAL 1 DAY, NOW())")
			h := kaiwa.HashCredential(fmt.Sprintf("a:token-%d", i))
			args = append(args, fmt.Sprintf("u%d", i), h)
			if i%173 == 0 {
				hashes = append(hashes, h)
			}
		}
		_, err := s.db.Exec(q.String(), args...)
		must(t, err)
	}
	for _, table := range []string{"user_tokens", "tenants"} {
		_, err := s.db.Exec("ANALYZE TABLE " + table)
		must(t, err)
	}
	plans := s.explainAll(t, tokensByHashSQL(len(hashes)), hashes...)
	for _, p := range plans {
		t.Logf("tokens: table %s, %s on %q (%s)", p.table, p.typ, p.key, p.extra)
	}
	if len(plans) != 2 || plans[0].table != "u" || plans[0].key != "user_tokens_hash" || plans[0].typ != "range" {
		t.Errorf("%d tokens by hash: not read first by the hash index: %+v", len(hashes), plans)
	}
}

// TestLogQueriesUseIndexes checks that every shape of log query the API
// serves reads one index range in order: no table scan, no filesort.
func TestLogQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	base := time.UnixMilli(1_700_000_000_000)
	var msgs []kaiwa.Message
	var events []kaiwa.Event
	for _, tenant := range []kaiwa.TenantID{"a", "b", "c"} {
		for i := range 1500 {
			ch := fmt.Sprintf("ch%d", i%30)
			user := fmt.Sprintf("u%d", i%50)
			m := msg(tenant, fmt.Sprintf("m%d", i), uint64(i+1), ch, user, "x")
			m.TS = base.Add(time.Duration(i) * time.Second).UnixMilli()
			msgs = append(msgs, m)
			events = append(events, kaiwa.Event{
				Tenant: tenant, ID: fmt.Sprintf("e%d", i), Type: []string{kaiwa.EventJoin, kaiwa.EventSay, kaiwa.EventKick}[i%3],
				User: user, Channel: ch, TS: m.TS,
			})
		}
	}
	appendMsgs(t, s, msgs...)
	must(t, s.AppendEvents(ctx, events))
	for _, table := range []string{"messages", "events"} {
		_, err := s.db.Exec("ANALYZE TABLE " + table)
		must(t, err)
	}

	since, until := base.Add(10*time.Minute), base.Add(20*time.Minute)
	cur := &place{ts: base.Add(15 * time.Minute).UnixMilli(), seq: 900, pk: 2400}
	for _, c := range []struct {
		name  string
		q     kaiwa.MessageQuery
		after bool
		index string
	}{
		{"tenant", kaiwa.MessageQuery{}, false, "messages_ts"},
		{"tenant desc after", kaiwa.MessageQuery{Desc: true}, true, "messages_ts"},
		{"channel", kaiwa.MessageQuery{Channel: "ch3"}, false, "messages_channel_ts"},
		{"channel desc", kaiwa.MessageQuery{Channel: "ch3", Desc: true}, false, "messages_channel_ts"},
		{"channel after", kaiwa.MessageQuery{Channel: "ch3"}, true, "messages_channel_ts"},
		{"inbox", kaiwa.MessageQuery{Channel: "@u3"}, false, "messages_channel_ts"},
		{"user", kaiwa.MessageQuery{User: "u7"}, false, "messages_user_ts"},
		{"user desc after", kaiwa.MessageQuery{User: "u7", Desc: true}, true, "messages_user_ts"},
		{"time range", kaiwa.MessageQuery{Since: since, Until: until}, false, "messages_ts"},
		{"time range desc after", kaiwa.MessageQuery{Since: since, Until: until, Desc: true}, true, "messages_ts"},
		{"channel time range", kaiwa.MessageQuery{Channel: "ch3", Since: since, Until: until}, false, "messages_channel_ts"},
		{"user since", kaiwa.MessageQuery{User: "u7", Since: since, Desc: true}, false, "messages_user_ts"},
	} {
		var after, before *place
		if c.after {
			if c.q.Desc {
				before = cur
			} else {
				after = cur
			}
		}
		query, args := messagesSQL("b", c.q, after, before, 50)
		p := s.explain(t, query, args...)
		t.Logf("messages %-22s key %-20s %s", c.name, p.key, p.extra)
		if p.key != c.index || strings.Contains(p.extra, "filesort") {
			t.Errorf("messages by %s: index %q (%s), want %s without filesort", c.name, p.key, p.extra, c.index)
		}
	}
	// The user and channel together use either index.
	query, args := messagesSQL("b", kaiwa.MessageQuery{Channel: "ch3", User: "u7"}, nil, nil, 50)
	if p := s.explain(t, query, args...); p.key == "" || strings.Contains(p.extra, "filesort") {
		t.Errorf("messages by channel and user: index %q (%s)", p.key, p.extra)
	}

	for _, c := range []struct {
		name  string
		q     kaiwa.EventQuery
		index string
	}{
		{"tenant", kaiwa.EventQuery{}, "events_ts"},
		{"type", kaiwa.EventQuery{Type: kaiwa.EventKick}, "events_type_ts"},
		{"user", kaiwa.EventQuery{User: "u7"}, "events_user_ts"},
		{"channel", kaiwa.EventQuery{Channel: "ch3"}, "events_channel_ts"},
		{"time range", kaiwa.EventQuery{Since: since, Until: until}, "events_ts"},
		{"type since", kaiwa.EventQuery{Type: kaiwa.EventKick, Since: since}, "events_type_ts"},
	} {
		query, args := eventsSQL("b", c.q, nil, 50)
		p := s.explain(t, query, args...)
		t.Logf("events %-22s key %-20s %s", c.name, p.key, p.extra)
		if p.key != c.index || strings.Contains(p.extra, "filesort") {
			t.Errorf("events by %s: index %q (%s), want %s without filesort", c.name, p.key, p.extra, c.index)
		}
	}

	// An unread count reads the (channel, seq) index alone.
	unread := "SELECT 1 FROM messages WHERE tenant_id = 'b' AND channel = 'ch3' AND seq > 5 AND from_user <> 'u7' AND deleted_at IS NULL ORDER BY seq LIMIT 1000"
	if p := s.explain(t, unread); p.key != "messages_channel_seq" || !strings.Contains(p.extra, "Using index") || strings.Contains(p.extra, "filesort") {
		t.Errorf("unread count: index %q (%s), want messages_channel_seq, covering", p.key, p.extra)
	}

	// Purge selects its batches by index too.
	for _, c := range []struct{ query, index string }{
		{"SELECT pk, text FROM messages WHERE tenant_id = 'b' AND ts < 1700000500000 ORDER BY ts LIMIT 100", "messages_ts"},
		{"SELECT pk FROM events WHERE tenant_id = 'b' AND ts < 1700000500000 ORDER BY ts LIMIT 100", "events_ts"},
	} {
		if p := s.explain(t, c.query); p.key != c.index || strings.Contains(p.extra, "filesort") {
			t.Errorf("%s: index %q (%s), want %s", c.query, p.key, p.extra, c.index)
		}
	}
}
