package tenants

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

func TestStartPlayersAnswersAsOneByOne(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	appendMsgs(t, s,
		msg("a", "l1", 1, "lobby", "alice", "hi"), msg("a", "l2", 2, "lobby", "bob", "yo"),
		msg("a", "l3", 3, "lobby", "bob", "gg"), msg("a", "l4", 4, "lobby", "carol", "ok"),
		msg("a", "g1", 1, "guild", "bob", "raid"), msg("a", "g2", 2, "guild", "alice", "now"),
		msg("a", "f1", 1, "far", "carol", "late"),
		msg("b", "l1", 1, "lobby", "carol", "hi"), msg("b", "l2", 2, "lobby", "dave", "yo"))
	for _, b := range []struct {
		tenant      kaiwa.TenantID
		user, other string
	}{{"a", "alice", "bob"}, {"a", "alice", "carol"}, {"b", "alice", "dave"}} {
		if _, err := s.Block(ctx, b.tenant, b.user, b.other, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		tenant   kaiwa.TenantID
		user, ch string
		seq      uint64
	}{{"a", "alice", "lobby", 2}, {"a", "bob", "guild", 2}, {"b", "alice", "lobby", 1}} {
		if _, _, err := s.SetCursor(ctx, c.tenant, c.user, c.ch, c.seq); err != nil {
			t.Fatal(err)
		}
	}
	// More channels than one count query takes, the one with messages
	// past the first chunk.
	many := make([]string, 150)
	for i := range many {
		many[i] = fmt.Sprintf("empty-%d", i)
	}
	many[120] = "far"

	reqs := []kaiwa.PlayerStartRequest{
		{Tenant: "a", User: "alice", Channels: []string{"lobby", "guild"}},
		{Tenant: "a", User: "bob", Channels: []string{"guild", "lobby", "nothing-here"}},
		{Tenant: "b", User: "alice", Channels: []string{"lobby"}},
		{Tenant: "a", User: "alice"},
		{Tenant: "a", User: "nobody", Channels: many},
	}
	got := s.StartPlayers(ctx, reqs)
	if len(got) != len(reqs) {
		t.Fatalf("%d results for %d requests", len(got), len(reqs))
	}
	for i, r := range reqs {
		blocks, err := s.Blocks(ctx, r.Tenant, r.User)
		if err != nil {
			t.Fatal(err)
		}
		want := kaiwa.PlayerStart{Blocks: blocks}
		if len(r.Channels) > 0 {
			if want.Unread, err = s.Unread(ctx, r.Tenant, r.User, r.Channels); err != nil {
				t.Fatal(err)
			}
		}
		if got[i].Err != nil || !reflect.DeepEqual(got[i].Start, want) {
			t.Errorf("request %d (%s/%s): got %+v, %v; one by one %+v", i, r.Tenant, r.User, got[i].Start, got[i].Err, want)
		}
	}
	// And what one by one gives is right: alice of a read lobby to 2 and
	// blocks bob and carol (bob and carol wrote after it); bob counts his
	// own messages out.
	if u := got[0].Start.Unread; len(u) != 2 || u[0] != (kaiwa.Unread{Channel: "lobby", Count: 2, Read: 2}) ||
		u[1] != (kaiwa.Unread{Channel: "guild", Count: 1}) {
		t.Errorf("alice of a: unread %+v", u)
	}
	if b := got[0].Start.Blocks; !reflect.DeepEqual(b, []string{"bob", "carol"}) {
		t.Errorf("alice of a blocks %v", b)
	}
	if u := got[1].Start.Unread; len(u) != 3 || u[0].Count != 0 || u[1] != (kaiwa.Unread{Channel: "lobby", Count: 2}) || u[2].Count != 0 {
		t.Errorf("bob of a: unread %+v", u)
	}
	if u := got[2].Start.Unread; len(u) != 1 || u[0] != (kaiwa.Unread{Channel: "lobby", Count: 1, Read: 1}) {
		t.Errorf("alice of b: unread %+v", u)
	}
	if u := got[4].Start.Unread; len(u) != 150 || u[120] != (kaiwa.Unread{Channel: "far", Count: 1}) || u[119].Count != 0 {
		t.Errorf("nobody: unread of far %+v", u[120])
	}
}
