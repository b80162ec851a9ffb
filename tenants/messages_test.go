package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
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

func TestDeleteMessageLeavesTombstone(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	appendMsgs(t, s,
		msg("a", "m1", 1, "lobby", "alice", "first"),
		msg("a", "m2", 2, "lobby", "bob", "rude words"),
		msg("a", "m3", 3, "lobby", "alice", "third"),
		msg("b", "m2", 2, "lobby", "bob", "b's own m2"),
	)
	visible := func(tenant kaiwa.TenantID, q kaiwa.MessageQuery) []string {
		t.Helper()
		page, err := s.Messages(ctx, tenant, q)
		must(t, err)
		return ids(page.Messages)
	}

	existed, err := s.DeleteMessage(ctx, "a", "lobby", "m2", false)
	if err != nil || !existed {
		t.Fatalf("DeleteMessage(m2) = %v, %v; want existed", existed, err)
	}
	if got := visible("a", kaiwa.MessageQuery{}); !reflect.DeepEqual(got, []string{"m1", "m3"}) {
		t.Fatalf("log after delete = %v", got)
	}
	for _, q := range []kaiwa.MessageQuery{{Channel: "lobby"}, {User: "bob"}, {Desc: true}, {Since: time.UnixMilli(0)}} {
		for _, id := range visible("a", q) {
			if id == "m2" {
				t.Fatalf("query %+v returns the deleted message", q)
			}
		}
	}
	// The tombstone keeps no content.
	var text string
	var data sql.NullString
	must(t, s.db.QueryRow("SELECT text, data FROM messages WHERE tenant_id = 'a' AND id = 'm2'").Scan(&text, &data))
	if text != "" || data.Valid {
		t.Fatalf("tombstone keeps text %q, data %v", text, data)
	}
	// Deleting again reports that it was already gone; a retried append
	// of the batch does not bring it back.
	if existed, err := s.DeleteMessage(ctx, "a", "lobby", "m2", false); err != nil || existed {
		t.Fatalf("second DeleteMessage = %v, %v", existed, err)
	}
	appendMsgs(t, s, msg("a", "m2", 2, "lobby", "bob", "rude words"))
	if got := visible("a", kaiwa.MessageQuery{}); !reflect.DeepEqual(got, []string{"m1", "m3"}) {
		t.Fatalf("log after re-append = %v", got)
	}
	// The deleted message still works as a cursor, as the last message
	// of a page read before the deletion would.
	if got := visible("a", kaiwa.MessageQuery{After: "m2"}); !reflect.DeepEqual(got, []string{"m3"}) {
		t.Fatalf("after the deleted m2 = %v", got)
	}
	if got := visible("a", kaiwa.MessageQuery{Before: "m2", Desc: true}); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Fatalf("before the deleted m2 = %v", got)
	}

	// An id the log has not seen, deleted without the stream holding it
	// (nobody knows such a message), leaves nothing behind: a message
	// that later gets that id is logged.
	if existed, err := s.DeleteMessage(ctx, "a", "lobby", "m6", false); err != nil || existed {
		t.Fatalf("DeleteMessage(m6 unknown) = %v, %v", existed, err)
	}
	var rows int
	must(t, s.db.QueryRow("SELECT COUNT(*) FROM messages WHERE tenant_id = 'a' AND id = 'm6'").Scan(&rows))
	if rows != 0 {
		t.Fatalf("a delete of an unknown id left %d rows", rows)
	}

	// An id not logged yet but known to be on its way (pending) gets a
	// tombstone: the message stays deleted when the log writer appends it.
	if existed, err := s.DeleteMessage(ctx, "a", "lobby", "m4", true); err != nil || existed {
		t.Fatalf("DeleteMessage(m4 not yet logged) = %v, %v", existed, err)
	}
	appendMsgs(t, s, msg("a", "m4", 4, "lobby", "bob", "late"), msg("a", "m5", 5, "lobby", "bob", "kept"),
		msg("a", "m6", 6, "guild", "bob", "m6 arrives"))
	if got := visible("a", kaiwa.MessageQuery{}); !reflect.DeepEqual(got, []string{"m1", "m3", "m5", "m6"}) {
		t.Fatalf("log after the late append = %v", got)
	}

	// The channel must match: another channel's id is not found, and the
	// message stays.
	_, err = s.DeleteMessage(ctx, "a", "guild", "m3", false)
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.DeleteMessage(ctx, "a", "guild", "m4", false) // a tombstone of lobby
	wantCode(t, err, kaiwa.CodeNotFound)
	if got := visible("a", kaiwa.MessageQuery{Channel: "lobby"}); !reflect.DeepEqual(got, []string{"m1", "m3", "m5"}) {
		t.Fatalf("a wrong-channel delete changed the log: %v", got)
	}

	// Tenant b's ids are its own: a's deletion of m2 left b's m2, and b
	// deleting m1 (which only a has) leaves a's m1 and tombstones b's.
	if got := visible("b", kaiwa.MessageQuery{}); !reflect.DeepEqual(got, []string{"m2"}) {
		t.Fatalf("b's log = %v", got)
	}
	if existed, err := s.DeleteMessage(ctx, "b", "lobby", "m1", true); err != nil || existed {
		t.Fatalf("b deleting a's id = %v, %v", existed, err)
	}
	if got := visible("a", kaiwa.MessageQuery{}); !reflect.DeepEqual(got, []string{"m1", "m3", "m5", "m6"}) {
		t.Fatalf("b's deletion reached a: %v", got)
	}
	if existed, err := s.DeleteMessage(ctx, "b", "lobby", "m2", false); err != nil || !existed {
		t.Fatalf("b deleting its own m2 = %v, %v", existed, err)
	}
	if got := visible("b", kaiwa.MessageQuery{}); len(got) != 0 {
		t.Fatalf("b's log = %v", got)
	}

	for _, bad := range []struct{ tenant, ch, id string }{
		{"a", "bad channel", "m1"}, {"a", "dm:bob:alice", "m1"}, {"a", "lobby", ""},
		{"a", "lobby", "has space"}, {"a", "lobby", strings.Repeat("i", MaxLogID+1)}, {"", "lobby", "m1"},
	} {
		_, err := s.DeleteMessage(ctx, kaiwa.TenantID(bad.tenant), bad.ch, bad.id, false)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
}

func TestConcurrentDeletesOfOneMessage(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, logged := range []bool{true, false} {
		id := fmt.Sprintf("m-%v", logged)
		if logged {
			appendMsgs(t, s, msg("a", id, 1, "lobby", "alice", "hi"))
		}
		var wg sync.WaitGroup
		results := make(chan error, 8)
		existed := make(chan bool, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.DeleteMessage(ctx, "a", "lobby", id, true)
				results <- err
				existed <- ok
			}()
		}
		wg.Wait()
		close(results)
		close(existed)
		for err := range results {
			if err != nil {
				t.Fatalf("concurrent delete (logged %v): %v", logged, err)
			}
		}
		n := 0
		for ok := range existed {
			if ok {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[logged]; n != want {
			t.Fatalf("logged %v: %d deletions report the message existed, want %d", logged, n, want)
		}
	}
	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{})
	must(t, err)
	if len(page.Messages) != 0 {
		t.Fatalf("log = %v", ids(page.Messages))
	}
}

func TestInboxMessagesAreLogged(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	sys := kaiwa.Message{Tenant: "a", ID: "s1", Seq: 1, Channel: kaiwa.Inbox("bob"), Text: "You won a prize", TS: 1_700_000_000_001, System: true}
	appendMsgs(t, s, sys, msg("a", "m2", 2, "lobby", "alice", "hi"))
	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{Channel: "@bob"})
	must(t, err)
	if len(page.Messages) != 1 || !reflect.DeepEqual(page.Messages[0], sys) {
		t.Fatalf("bob's inbox = %+v", page.Messages)
	}
	if existed, err := s.DeleteMessage(ctx, "a", "@bob", "s1", false); err != nil || !existed {
		t.Fatalf("DeleteMessage from an inbox = %v, %v", existed, err)
	}
	page, err = s.Messages(ctx, "a", kaiwa.MessageQuery{})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"m2"}) {
		t.Fatalf("log = %v", got)
	}
	ev := kaiwa.Event{Tenant: "a", ID: "e1", Type: kaiwa.EventSystem, User: "bob", Channel: "@bob", TS: 1}
	must(t, s.AppendEvents(ctx, []kaiwa.Event{ev}))
	// A malformed inbox is refused like any bad channel.
	err = s.AppendMessages(ctx, []kaiwa.Message{msg("a", "bad", 3, "@bad user", "", "x")})
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestMessagesAreInTimeOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	// Stream order and send time may disagree (two publishers' clocks):
	// the log is in time order, and within one millisecond in stream
	// order.
	at := func(id string, seq uint64, ts int64) kaiwa.Message {
		m := msg("a", id, seq, "lobby", "alice", id)
		m.TS = ts
		return m
	}
	appendMsgs(t, s, at("late", 1, 3000), at("early", 2, 1000), at("same-b", 4, 2000), at("same-a", 3, 2000))
	for _, desc := range []bool{false, true} {
		want := []string{"early", "same-a", "same-b", "late"}
		if desc {
			slices.Reverse(want)
		}
		for _, limit := range []int{1, 3, 10} {
			var got []string
			q := kaiwa.MessageQuery{Limit: limit, Desc: desc}
			for {
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
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("desc %v limit %d: %v, want %v", desc, limit, got, want)
			}
		}
	}
	_, err := s.Messages(ctx, "a", kaiwa.MessageQuery{Since: time.UnixMilli(2000), Until: time.UnixMilli(1000)})
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestMessagesAcrossChannels(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	// 90 messages over three channels and an inbox, one a second, by three
	// users; tenant b has the same ids and users.
	base := time.UnixMilli(1_700_000_000_000)
	var batch []kaiwa.Message
	for i := range 90 {
		ch := []string{"lobby", "guild.1", "trade", "@carol"}[i%4]
		user := []string{"alice", "bob", "carol"}[i%3]
		m := msg("a", fmt.Sprintf("m%02d", i), uint64(i+1), ch, user, fmt.Sprint(i))
		m.TS = base.Add(time.Duration(i) * time.Second).UnixMilli()
		batch = append(batch, m)
		mb := m
		mb.Tenant = "b"
		batch = append(batch, mb)
	}
	appendMsgs(t, s, batch...)
	// Two of bob's messages are deleted.
	for _, id := range []string{"m10", "m46"} {
		if _, err := s.DeleteMessage(ctx, "a", batch[2*atoi(t, id[1:])].Channel, id, false); err != nil {
			t.Fatal(err)
		}
	}
	want := func(keep func(i int, m kaiwa.Message) bool) []string {
		var out []string
		for i := 0; i < len(batch); i += 2 {
			m := batch[i]
			if m.ID != "m10" && m.ID != "m46" && keep(i/2, m) {
				out = append(out, m.ID)
			}
		}
		return out
	}
	since, until := base.Add(20*time.Second), base.Add(70*time.Second)
	for name, c := range map[string]struct {
		q    kaiwa.MessageQuery
		keep func(int, kaiwa.Message) bool
	}{
		"bob":             {kaiwa.MessageQuery{User: "bob"}, func(_ int, m kaiwa.Message) bool { return m.From == "bob" }},
		"time range":      {kaiwa.MessageQuery{Since: since, Until: until}, func(i int, _ kaiwa.Message) bool { return i >= 20 && i < 70 }},
		"bob in range":    {kaiwa.MessageQuery{User: "bob", Since: since, Until: until}, func(i int, m kaiwa.Message) bool { return m.From == "bob" && i >= 20 && i < 70 }},
		"since":           {kaiwa.MessageQuery{Since: since}, func(i int, _ kaiwa.Message) bool { return i >= 20 }},
		"until":           {kaiwa.MessageQuery{Until: until}, func(i int, _ kaiwa.Message) bool { return i < 70 }},
		"trade in range":  {kaiwa.MessageQuery{Channel: "trade", Since: since, Until: until}, func(i int, m kaiwa.Message) bool { return m.Channel == "trade" && i >= 20 && i < 70 }},
		"carol's inbox":   {kaiwa.MessageQuery{Channel: "@carol"}, func(_ int, m kaiwa.Message) bool { return m.Channel == "@carol" }},
		"alice in trade":  {kaiwa.MessageQuery{Channel: "trade", User: "alice"}, func(_ int, m kaiwa.Message) bool { return m.Channel == "trade" && m.From == "alice" }},
		"everything":      {kaiwa.MessageQuery{}, func(int, kaiwa.Message) bool { return true }},
		"nothing in time": {kaiwa.MessageQuery{Since: base.Add(time.Hour)}, func(int, kaiwa.Message) bool { return false }},
	} {
		for _, desc := range []bool{false, true} {
			exp := want(c.keep)
			if desc {
				slices.Reverse(exp)
			}
			for _, limit := range []int{1, 4, 500} {
				var got []string
				q := c.q
				q.Limit, q.Desc = limit, desc
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatalf("%s: pagination does not end", name)
					}
					page, err := s.Messages(ctx, "a", q)
					must(t, err)
					for _, m := range page.Messages {
						if m.Tenant != "a" {
							t.Fatalf("%s: message of tenant %s", name, m.Tenant)
						}
					}
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
				if !slices.Equal(got, exp) {
					t.Fatalf("%s desc %v limit %d:\n%v\nwant\n%v", name, desc, limit, got, exp)
				}
			}
		}
	}
	// b's copies of the deleted ids are still there.
	page, err := s.Messages(ctx, "b", kaiwa.MessageQuery{User: "bob", Limit: 500})
	must(t, err)
	if got := ids(page.Messages); !slices.Contains(got, "m10") || !slices.Contains(got, "m46") || len(got) != 30 {
		t.Fatalf("b's messages by bob = %v", got)
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
