package tenants

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestSearchAtScale measures the search index on a log of
// KAIWA_SEARCH_MESSAGES messages (skipped when unset): the log's append
// rate, the indexer's cost per message, and the p50/p99 of searches by
// 2- and 3-character substrings, Japanese and Latin, over the tenant and
// within channels. docs/benchmarks.md keeps its output for 1,000,000.
//
//	KAIWA_SEARCH_MESSAGES=1000000 scripts/with-test-mysql.sh go test -run TestSearchAtScale -v -timeout 60m ./tenants
func TestSearchAtScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KAIWA_SEARCH_MESSAGES"))
	if n <= 0 {
		t.Skip("KAIWA_SEARCH_MESSAGES not set")
	}
	ctx := context.Background()
	s := openStore(t, testenv.MySQL(t))
	newTenant(t, s, "acme")
	words := []string{"ギルド", "戦", "今夜", "やろう", "レイド", "ボス", "参加", "募集", "回復", "装備", "強化", "ガチャ",
		"guild", "raid", "boss", "tonight", "join", "heal", "gear", "lfg", "gg", "pvp", "quest", "loot"}
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		var b strings.Builder
		for range 3 + rng.IntN(8) {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(2) == 0 {
				b.WriteByte(' ')
			}
		}
		return b.String()
	}
	const batch = 1000
	began := time.Now()
	for i := 0; i < n; i += batch {
		msgs := make([]kaiwa.Message, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			msgs = append(msgs, kaiwa.Message{Tenant: "acme", ID: "m-" + strconv.Itoa(j+1), Seq: uint64(j + 1),
				Channel: "ch" + strconv.Itoa(j%200), From: "u" + strconv.Itoa(j%5000), Text: text(), TS: int64(j)})
		}
		if err := s.AppendMessages(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	appendTook := time.Since(began)
	began = time.Now()
	for {
		done, err := s.IndexMessages(ctx, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if done == 0 {
			break
		}
	}
	indexTook := time.Since(began)
	var grams, bytes int64
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM message_grams`).Scan(&grams); err != nil {
		t.Fatal(err)
	}
	_ = s.db.QueryRow(`SELECT data_length + index_length FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_name = 'message_grams'`).Scan(&bytes)
	t.Logf("%d messages: log append %.0f msg/s; index %.0f msg/s (%.1f µs/message), %.1f index rows/message, %.0f bytes/message",
		n, float64(n)/appendTook.Seconds(), float64(n)/indexTook.Seconds(), float64(indexTook.Microseconds())/float64(n),
		float64(grams)/float64(n), float64(bytes)/float64(n))

	queries := []kaiwa.SearchQuery{
		{Q: "ギル"}, {Q: "ギルド戦"}, {Q: "ぎるど"}, {Q: "ｷﾞﾙﾄﾞ"}, {Q: "ＧＵＩＬＤ"}, {Q: "raid boss"}, {Q: "gg"},
		{Q: "今夜", Channels: []string{"ch1", "ch2", "ch3"}}, {Q: "レイドボス", Channels: []string{"ch7"}},
		{Q: "装備強化", User: "u42"}, {Q: "存在しない"},
	}
	for _, q := range queries {
		var took []time.Duration
		found := 0
		for range 50 {
			q.Limit = 50
			start := time.Now()
			page, err := s.Search(ctx, "acme", q)
			took = append(took, time.Since(start))
			if err != nil {
				t.Fatal(err)
			}
			found = len(page.Messages)
		}
		slices.Sort(took)
		t.Logf("%-40s %2d found  p50 %6.2f ms  p99 %6.2f ms", fmt.Sprintf("%q ch=%v user=%s", q.Q, q.Channels, q.User), found,
			ms(took[len(took)/2]), ms(took[len(took)*99/100]))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
