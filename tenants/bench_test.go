package tenants

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// fillLog appends n messages of tenant, one a second ending at end, over
// 20 channels and 50 users.
func fillLog(b *testing.B, s *Store, tenant kaiwa.TenantID, prefix string, n int, end time.Time) {
	b.Helper()
	batch := make([]kaiwa.Message, 0, 1000)
	for i := range n {
		m := msg(tenant, fmt.Sprintf("%s%d", prefix, i), uint64(i+1), fmt.Sprintf("ch%d", i%20), fmt.Sprintf("u%d", i%50), "some chat text")
		m.TS = end.Add(time.Duration(i-n) * time.Second).UnixMilli()
		batch = append(batch, m)
		if len(batch) == cap(batch) || i == n-1 {
			appendMsgs(b, s, batch...)
			batch = batch[:0]
		}
	}
}

// BenchmarkMessagesPage reads a 50-message page from a 100,000-message log
// with each kind of filter.
func BenchmarkMessagesPage(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	end := time.UnixMilli(1_700_000_000_000)
	fillLog(b, s, "a", "m", 100_000, end)
	_, err := s.db.Exec("ANALYZE TABLE messages")
	must(b, err)
	mid := end.Add(-50_000 * time.Second)
	for _, c := range []struct {
		name string
		q    kaiwa.MessageQuery
	}{
		{"Channel", kaiwa.MessageQuery{Channel: "ch7", Desc: true}},
		{"User", kaiwa.MessageQuery{User: "u7", Desc: true}},
		{"TimeRange", kaiwa.MessageQuery{Since: mid, Until: mid.Add(time.Hour)}},
		{"ChannelTimeRangeAfter", kaiwa.MessageQuery{Channel: "ch7", Since: mid, After: "m50007"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, err := s.Messages(ctx, "a", c.q)
				if err != nil || len(page.Messages) != DefaultPageLimit {
					b.Fatalf("%d messages, %v", len(page.Messages), err)
				}
			}
		})
	}
}

// BenchmarkPurge deletes 20,000 expired messages and 20,000 events of one
// tenant in batches of 1000, next to another tenant's live log.
func BenchmarkPurge(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	now := time.Now()
	for _, tenant := range []kaiwa.TenantID{"a", "b"} {
		newTenant(b, s, tenant)
	}
	fillLog(b, s, "b", "live", 5_000, now)
	const n = 20_000
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		fillLog(b, s, "a", fmt.Sprintf("r%d-", i), n, now.AddDate(0, 0, -100))
		events := make([]kaiwa.Event, n)
		for j := range events {
			events[j] = kaiwa.Event{Tenant: "a", ID: fmt.Sprintf("r%d-%d", i, j), Type: kaiwa.EventSay, TS: now.AddDate(0, 0, -100).UnixMilli()}
		}
		must(b, s.AppendEvents(ctx, events))
		b.StartTimer()
		st, err := s.Purge(ctx, now, 1000)
		if err != nil || st.Messages != n || st.Events != n {
			b.Fatalf("Purge = %+v, %v", st, err)
		}
	}
	b.ReportMetric(float64(2*n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
