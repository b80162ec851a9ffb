package tenants

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func eventIDs(events []kaiwa.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func TestEvents(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()

	// 60 events of a; several share a ts (then arrival order decides).
	types := []string{kaiwa.EventConnect, kaiwa.EventJoin, kaiwa.EventSay, kaiwa.EventLeave}
	var batch []kaiwa.Event
	var all []string // newest first
	for i := range 60 {
		e := kaiwa.Event{
			Tenant: "a", ID: fmt.Sprintf("e%02d", i), Type: types[i%4],
			User: []string{"alice", "bob", "Alice"}[i%3], TS: int64(1_700_000_000_000 + i/2*1000),
		}
		if e.Type != kaiwa.EventConnect {
			e.Channel = "lobby"
		}
		if i%5 == 0 {
			e.Detail = json.RawMessage(fmt.Sprintf(`{"reason": "it's \"%d\" \\ 🐉", "code" : 4001}`, i))
		}
		batch = append(batch, e)
		all = append([]string{e.ID}, all...)
	}
	batch = append(batch, kaiwa.Event{Tenant: "b", ID: "e00", Type: kaiwa.EventConnect, User: "alice", TS: 1_700_000_000_000})
	if err := s.AppendEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, batch[:10]); err != nil { // a retry
		t.Fatal(err)
	}
	if n := s.countRows(t, "events"); n != 61 {
		t.Fatalf("%d events stored, want 61", n)
	}

	walk := func(q kaiwa.EventQuery) []string {
		t.Helper()
		var got []string
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("pagination does not end")
			}
			page, err := s.Events(ctx, "a", q)
			must(t, err)
			got = append(got, eventIDs(page.Events)...)
			if page.Next == "" {
				return got
			}
			q.Before = page.Next
		}
	}
	for _, limit := range []int{1, 7, 60, 0} {
		if got := walk(kaiwa.EventQuery{Limit: limit}); !reflect.DeepEqual(got, all) {
			t.Fatalf("limit %d walked\n%v\nwant\n%v", limit, got, all)
		}
	}

	// Every event reads back as written.
	page, err := s.Events(ctx, "a", kaiwa.EventQuery{Limit: 500})
	must(t, err)
	for i, got := range page.Events {
		if w := batch[59-i]; !reflect.DeepEqual(got, w) {
			t.Fatalf("event read back as\n%#v\nwant\n%#v", got, w)
		}
	}

	filter := func(keep func(kaiwa.Event) bool) []string {
		var out []string
		for i := 59; i >= 0; i-- {
			if keep(batch[i]) {
				out = append(out, batch[i].ID)
			}
		}
		return out
	}
	cases := []struct {
		q    kaiwa.EventQuery
		keep func(kaiwa.Event) bool
	}{
		{kaiwa.EventQuery{Type: kaiwa.EventSay, Limit: 4}, func(e kaiwa.Event) bool { return e.Type == kaiwa.EventSay }},
		{kaiwa.EventQuery{User: "Alice", Limit: 3}, func(e kaiwa.Event) bool { return e.User == "Alice" }},
		{kaiwa.EventQuery{Channel: "lobby", Limit: 9}, func(e kaiwa.Event) bool { return e.Channel == "lobby" }},
		{kaiwa.EventQuery{Type: kaiwa.EventJoin, User: "bob"}, func(e kaiwa.Event) bool { return e.Type == kaiwa.EventJoin && e.User == "bob" }},
		{
			kaiwa.EventQuery{Since: time.UnixMilli(1_700_000_005_000), Until: time.UnixMilli(1_700_000_010_000), Limit: 2},
			func(e kaiwa.Event) bool { return e.TS >= 1_700_000_005_000 && e.TS < 1_700_000_010_000 },
		},
	}
	for _, c := range cases {
		if got, want := walk(c.q), filter(c.keep); !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Fatalf("query %+v walked\n%v\nwant\n%v", c.q, got, want)
		}
	}

	// Tenant b reads only its own; a's ids are no cursor for b.
	pb, err := s.Events(ctx, "b", kaiwa.EventQuery{})
	must(t, err)
	if len(pb.Events) != 1 || pb.Events[0].Tenant != "b" || pb.Events[0].Channel != "" {
		t.Fatalf("tenant b reads %+v", pb.Events)
	}
	_, err = s.Events(ctx, "b", kaiwa.EventQuery{Before: "e30"})
	wantCode(t, err, kaiwa.CodeBadRequest)
	for _, q := range []kaiwa.EventQuery{{Type: "bad type"}, {User: "x y"}, {Channel: "no good"}, {Before: "nosuch"}} {
		_, err := s.Events(ctx, "a", q)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}

	// Invalid events are skipped, the valid ones of the batch stored.
	for _, bad := range []kaiwa.Event{
		{Tenant: "a", ID: "", Type: "x"},
		{Tenant: "a", ID: "z", Type: ""},
		{Tenant: "a", ID: "z", Type: "x", User: "a b"},
		{Tenant: "a", ID: "z", Type: "x", Channel: "a b"},
		{Tenant: "a", ID: "z", Type: "x", Detail: json.RawMessage("{")},
		{Tenant: "", ID: "z", Type: "x"},
	} {
		err := s.AppendEvents(ctx, []kaiwa.Event{{Tenant: "a", ID: "fine", Type: "x"}, bad})
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	if n := s.countRows(t, "events"); n != 62 {
		t.Fatalf("%d events after invalid batches, want 62 (61 and the valid one)", n)
	}
}
