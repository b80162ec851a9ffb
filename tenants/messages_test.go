package tenants

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// trickyTexts are stored and read back byte for byte.
var trickyTexts = []string{
	`'; DROP TABLE messages; --`,
	`Robert'); DELETE FROM tenants WHERE ('1'='1`,
	`back\slash \\ \' \" \n not a newline`,
	"real\nnewline\tand\ttabs\r\n",
	`"double" and 'single' quotes`,
	"emoji 🎮🐉👍🏽 and 4-byte 𠜎𝄞",
	"日本語のテキスト",
	"NUL \x00 inside",
	"%_ LIKE wildcards",
	" leading and trailing spaces ",
	"",
}

func msg(tenant kaiwa.TenantID, id string, seq uint64, ch, from, text string) kaiwa.Message {
	return kaiwa.Message{Tenant: tenant, ID: id, Seq: seq, Channel: ch, From: from, Name: "N " + from, Text: text, TS: int64(1_700_000_000_000 + seq)}
}

func appendMsgs(t testing.TB, s *Store, msgs ...kaiwa.Message) {
	t.Helper()
	if err := s.AppendMessages(context.Background(), msgs); err != nil {
		t.Fatalf("append messages: %v", err)
	}
}

func ids(msgs []kaiwa.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func (s *Store) countRows(t testing.TB, table string) int {
	t.Helper()
	var n int
	must(t, s.db.QueryRow("SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

func TestAppendMessagesRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()

	var batch []kaiwa.Message
	for i, text := range trickyTexts {
		m := msg("a", fmt.Sprintf("m%d", i), uint64(i+1), "lobby", "alice", text)
		m.Name = "Ålice 🗡️ O'Neil \\"
		quoted, _ := json.Marshal(text)
		m.Data = json.RawMessage(fmt.Sprintf(`{ "text" : %s,"n":[1, 2.50, -0.0e1] , "esc":"\u00e9\"\\" }`, quoted))
		batch = append(batch, m)
	}
	sys := kaiwa.Message{Tenant: "a", ID: "sys-1", Seq: 100, Channel: "lobby", Text: "Server restarts in 5 minutes", TS: 1_700_000_000_500, System: true}
	batch = append(batch, sys)
	appendMsgs(t, s, batch...)

	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{Channel: "lobby", Limit: 100})
	must(t, err)
	if page.Next != "" || len(page.Messages) != len(batch) {
		t.Fatalf("got %d messages, next %q; want %d", len(page.Messages), page.Next, len(batch))
	}
	for i, got := range page.Messages {
		if !reflect.DeepEqual(got, batch[i]) {
			t.Fatalf("message %d read back as\n%#v\nwant\n%#v", i, got, batch[i])
		}
	}
	if page.Messages[len(batch)-1].Data != nil {
		t.Fatal("a message without data reads back with data")
	}
}

func TestAppendMessagesIsIdempotent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	batch := []kaiwa.Message{
		msg("a", "m1", 1, "lobby", "alice", "hello"),
		msg("b", "m1", 1, "lobby", "bob", "same id, other tenant"),
		msg("a", "m2", 2, "lobby", "alice", "again"),
	}
	appendMsgs(t, s, batch...)
	appendMsgs(t, s, batch...)                                                      // a retried batch
	appendMsgs(t, s, batch[2], msg("a", "m2", 2, "lobby", "alice", "changed text")) // a duplicate within a batch
	if n := s.countRows(t, "messages"); n != 3 {
		t.Fatalf("%d rows after appending the same batch twice, want 3", n)
	}
	pa, err := s.Messages(ctx, "a", kaiwa.MessageQuery{})
	must(t, err)
	pb, err := s.Messages(ctx, "b", kaiwa.MessageQuery{})
	must(t, err)
	if !reflect.DeepEqual(ids(pa.Messages), []string{"m1", "m2"}) || pa.Messages[1].Text != "again" ||
		len(pb.Messages) != 1 || pb.Messages[0].Text != "same id, other tenant" {
		t.Fatalf("tenant a reads %+v\ntenant b reads %+v", pa.Messages, pb.Messages)
	}
	if err := s.AppendMessages(ctx, nil); err != nil {
		t.Fatalf("appending nothing: %v", err)
	}
}

func TestAppendMessagesSkipsInvalidMessages(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	bad := map[string]kaiwa.Message{
		"tenant":     msg("a b", "x", 2, "lobby", "alice", "hi"),
		"no id":      msg("a", "", 2, "lobby", "alice", "hi"),
		"long id":    msg("a", strings.Repeat("i", MaxLogID+1), 2, "lobby", "alice", "hi"),
		"space id":   msg("a", "i d", 2, "lobby", "alice", "hi"),
		"channel":    msg("a", "x", 2, "lob by", "alice", "hi"),
		"sender":     msg("a", "x", 2, "lobby", "al/ice", "hi"),
		"text utf8":  msg("a", "x", 2, "lobby", "alice", "\xff\xfe"),
		"data json":  {Tenant: "a", ID: "x", Channel: "lobby", Data: json.RawMessage(`{"a":`)},
		"data utf8":  {Tenant: "a", ID: "x", Channel: "lobby", Data: json.RawMessage("{\"a\":\"\xff\"}")},
		"long name":  {Tenant: "a", ID: "x", Channel: "lobby", Name: strings.Repeat("n", kaiwa.MaxNameLen+1)},
		"name utf8":  {Tenant: "a", ID: "x", Channel: "lobby", Name: "\xc0"},
		"no channel": {Tenant: "a", ID: "x"},
	}
	i := 0
	for name, m := range bad {
		i++
		good := msg("a", fmt.Sprintf("ok%d", i), uint64(i), "lobby", "alice", "hi")
		err := s.AppendMessages(ctx, []kaiwa.Message{good, m})
		if kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest || !strings.Contains(err.Error(), "message 1") {
			t.Fatalf("%s: error %v, want bad_request naming message 1", name, err)
		}
	}
	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{})
	must(t, err)
	if len(page.Messages) != len(bad) || s.countRows(t, "messages") != len(bad) {
		t.Fatalf("stored %d messages, want only the %d valid ones", s.countRows(t, "messages"), len(bad))
	}
	for _, m := range page.Messages {
		if !strings.HasPrefix(m.ID, "ok") {
			t.Fatalf("invalid message %q stored", m.ID)
		}
	}

	// Many invalid messages: the error counts them all.
	many := make([]kaiwa.Message, 8)
	err = s.AppendMessages(ctx, many)
	if kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest || !strings.Contains(err.Error(), "skipped 8 invalid") ||
		!strings.Contains(err.Error(), "and 3 more") {
		t.Fatalf("error for 8 invalid messages: %v", err)
	}
}

func TestAppendMessagesLargeBatches(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	var batch []kaiwa.Message
	for i := range 1201 {
		batch = append(batch, msg("a", fmt.Sprintf("m%04d", i), uint64(i+1), "lobby", "alice", "x"))
	}
	appendMsgs(t, s, batch...)
	appendMsgs(t, s, batch...)
	if n := s.countRows(t, "messages"); n != 1201 {
		t.Fatalf("%d rows, want 1201", n)
	}
	// Big texts are split by size, not only by count.
	big := strings.Repeat("🐉'\\", 150_000) // 1.2 MB with characters that need escaping
	var bigs []kaiwa.Message
	for i := range 4 {
		bigs = append(bigs, msg("a", fmt.Sprintf("big%d", i), uint64(5000+i), "big", "alice", big))
	}
	appendMsgs(t, s, bigs...)
	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{Channel: "big"})
	must(t, err)
	if len(page.Messages) != 4 || page.Messages[3].Text != big {
		t.Fatalf("read back %d big messages", len(page.Messages))
	}

	// Limits: default 50, clamped to 500.
	for limit, want := range map[int]int{0: DefaultPageLimit, -3: DefaultPageLimit, 7: 7, 10_000: MaxPageLimit} {
		page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{Channel: "lobby", Limit: limit})
		must(t, err)
		if len(page.Messages) != want || page.Next != page.Messages[want-1].ID {
			t.Fatalf("limit %d: %d messages, next %q; want %d", limit, len(page.Messages), page.Next, want)
		}
	}
}

func TestMessagesPagination(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()

	// Three channels interleaved in one sequence; m050 and m051 share a seq
	// (as messages of two streams could), and one message of another tenant
	// sits in the middle.
	var batch []kaiwa.Message
	want := map[string][]string{}
	seq := uint64(100)
	for i := range 120 {
		ch := []string{"lobby", "guild.1", "Lobby"}[i%3]
		if i != 51 {
			seq += 3
		}
		from := []string{"alice", "bob"}[i%2]
		batch = append(batch, msg("a", fmt.Sprintf("m%03d", i), seq, ch, from, fmt.Sprint("text ", i)))
		want[ch] = append(want[ch], fmt.Sprintf("m%03d", i))
		want[""] = append(want[""], fmt.Sprintf("m%03d", i))
		if i == 60 {
			batch = append(batch, msg("b", "other", seq+1, ch, "alice", "b's message"))
		}
	}
	appendMsgs(t, s, batch...)

	reversed := func(in []string) []string {
		out := make([]string, len(in))
		for i, v := range in {
			out[len(in)-1-i] = v
		}
		return out
	}
	for _, ch := range []string{"", "lobby", "Lobby", "guild.1"} {
		for _, desc := range []bool{false, true} {
			for _, limit := range []int{1, 7, 40, 120} {
				var got []string
				q := kaiwa.MessageQuery{Channel: ch, Limit: limit, Desc: desc}
				for pages := 0; ; pages++ {
					if pages > 200 {
						t.Fatal("pagination does not end")
					}
					page, err := s.Messages(ctx, "a", q)
					must(t, err)
					got = append(got, ids(page.Messages)...)
					if page.Next == "" {
						break
					}
					if desc {
						q.Before = page.Next
					} else {
						q.After = page.Next
					}
				}
				exp := want[ch]
				if desc {
					exp = reversed(exp)
				}
				if !reflect.DeepEqual(got, exp) {
					t.Fatalf("channel %q desc %v limit %d walked\n%v\nwant\n%v", ch, desc, limit, got, exp)
				}
			}
		}
	}

	// After and Before together bound a range, either way round.
	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{After: "m010", Before: "m015"})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"m011", "m012", "m013", "m014"}) {
		t.Fatalf("range = %v", got)
	}
	page, err = s.Messages(ctx, "a", kaiwa.MessageQuery{After: "m049", Before: "m052", Desc: true})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"m051", "m050"}) {
		t.Fatalf("range over a shared seq = %v", got)
	}

	// Filters.
	page, err = s.Messages(ctx, "a", kaiwa.MessageQuery{Channel: "lobby", User: "bob", Limit: 3})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"m003", "m009", "m015"}) || page.Next != "m015" {
		t.Fatalf("lobby by bob = %v next %q", got, page.Next)
	}
	since := time.UnixMilli(batch[10].TS)
	until := time.UnixMilli(batch[13].TS)
	page, err = s.Messages(ctx, "a", kaiwa.MessageQuery{Since: since, Until: until})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"m010", "m011", "m012"}) {
		t.Fatalf("since/until = %v", got)
	}
	page, err = s.Messages(ctx, "a", kaiwa.MessageQuery{User: "Alice"})
	must(t, err)
	if len(page.Messages) != 0 || page.Messages == nil {
		t.Fatalf("user names are case-sensitive, Alice has %#v", page.Messages)
	}

	// Tenant b sees only its own message, and a's ids are not cursors for b.
	page, err = s.Messages(ctx, "b", kaiwa.MessageQuery{})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"other"}) {
		t.Fatalf("tenant b reads %v", got)
	}
	for _, q := range []kaiwa.MessageQuery{{After: "m010"}, {Before: "m010"}} {
		_, err = s.Messages(ctx, "b", q)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	_, err = s.Messages(ctx, "a", kaiwa.MessageQuery{After: "other"})
	wantCode(t, err, kaiwa.CodeBadRequest)
	for _, q := range []kaiwa.MessageQuery{{After: "nosuch"}, {Before: "' OR 1=1 --"}, {Channel: "bad channel"}, {User: "bad user"}} {
		_, err = s.Messages(ctx, "a", q)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	_, err = s.Messages(ctx, "", kaiwa.MessageQuery{})
	wantCode(t, err, kaiwa.CodeBadRequest)
}
