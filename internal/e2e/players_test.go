package e2e

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// TestPlayersThroughNginx drives what players do through nginx with real
// v2 clients: edits (live and after a resume), a reply's quote,
// reactions, unread counts and read cursors on two devices, a block,
// typing, and search with the tenant API beside it.
func TestPlayersThroughNginx(t *testing.T) {
	c := newCluster(t, clusterOpts{})
	key := c.tenant("acme")
	rival := c.tenant("rival")
	c.must(201, "PUT", "/channels/lobby", key, map[string]any{"kind": "open"})
	c.must(201, "PUT", "/channels/lobby", rival, map[string]any{"kind": "open"})
	ctx := ctxT(t, 90*time.Second)
	all := []string{"*"}
	dial := func(tenantKey, user string, resume map[string]uint64) *client.Conn {
		t.Helper()
		conn, err := c.dialV("v2", client.Options{Token: c.token(tenantKey, user, all, all), Resume: resume})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.Join(ctx, "lobby"); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	wait := func(conn *client.Conn, what string, ok func(client.Event) bool) client.Event {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev, open := <-conn.Events():
				if !open {
					t.Fatalf("%s: connection ended: %v", what, conn.Err())
				}
				if ok(ev) {
					return ev
				}
			case <-deadline:
				t.Fatalf("no %s within 10s", what)
			}
		}
	}
	alice, bob, carol := dial(key, "alice", nil), dial(key, "bob", nil), dial(key, "carol", nil)

	// Edit: live, in history, after a resume.
	id, _, err := alice.SayCID(ctx, "lobby", "今夜ギルド戦やろう", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	wait(bob, "the message", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.ID == id })
	away := bob.LastSeqs()
	bob.Close()
	if _, err := alice.Edit(ctx, "lobby", id, "今夜ギルド戦やろう！ＧＵＩＬＤ"); err != nil {
		t.Fatal(err)
	}
	wait(carol, "the edit live", func(ev client.Event) bool { return ev.Op == "edited" && ev.ID == id })
	bob = dial(key, "bob", away)
	wait(bob, "the edit after the resume", func(ev client.Event) bool {
		return ev.Op == "edited" && ev.ID == id && strings.HasSuffix(ev.Change.Text, "ＧＵＩＬＤ")
	})
	if _, err := bob.Edit(ctx, "lobby", id, "not mine"); kaiwa.ErrorCode(err) != kaiwa.CodeForbidden {
		t.Fatalf("editing another's message: %v", err)
	}

	// A reply quotes; reactions count (two add, one takes back).
	reply, _, err := bob.SayWith(ctx, "lobby", "参加する", nil, client.SayOptions{ReplyTo: id})
	if err != nil {
		t.Fatal(err)
	}
	ev := wait(carol, "the reply", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.ID == reply })
	if ev.Msg.Quote == nil || ev.Msg.Quote.ID != id || ev.Msg.Quote.From != "alice" {
		t.Fatalf("reply %+v", ev.Msg)
	}
	for _, conn := range []*client.Conn{bob, carol} {
		if err := conn.React(ctx, "lobby", id, "🔥"); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.Unreact(ctx, "lobby", id, "🔥"); err != nil {
		t.Fatal(err)
	}
	ev = wait(alice, "the reaction taken back", func(ev client.Event) bool { return ev.Op == "reaction" && !ev.Change.Added })
	if !slices.Equal(ev.Change.Reactions, []kaiwa.Reaction{{Emoji: "🔥", Count: 1}}) {
		t.Fatalf("counts %+v", ev.Change.Reactions)
	}
	if err := alice.React(ctx, "lobby", id, strings.Repeat("x", 1024)); kaiwa.ErrorCode(err) != kaiwa.CodeTooLarge {
		t.Fatalf("a 1 KB reaction: %v", err)
	}

	// Typing reaches the others and nothing keeps it.
	if err := carol.Typing(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	wait(alice, "typing", func(ev client.Event) bool { return ev.Op == "typing" && ev.Presence.User == "carol" })

	// Unread after a reconnect equals what was sent meanwhile; reading on
	// one device clears it on the other.
	last, _, err := alice.SayCID(ctx, "lobby", "last one before bob reads", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	wait(bob, "the last message", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.ID == last })
	msgs, err := bob.History(ctx, "lobby", 1, "")
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if _, err := bob.Read(ctx, "lobby", msgs[0].Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Read(ctx, "lobby", msgs[0].Seq+1_000_000); kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest {
		t.Fatalf("a cursor past the end: %v", err)
	}
	bob.Close()
	for _, text := range []string{"one", "two", "three"} {
		if _, err := alice.Say(ctx, "lobby", text, nil); err != nil {
			t.Fatal(err)
		}
	}
	var phone, desk *client.Conn
	testenv.Eventually(t, "three unread after the reconnect", 10*time.Second, func() bool {
		if phone != nil {
			phone.Close()
		}
		phone = dial(key, "bob", nil)
		u, err := phone.Unread(ctx, "lobby")
		return err == nil && u["lobby"].Count == 3
	})
	desk = dial(key, "bob", nil)
	newest, err := desk.History(ctx, "lobby", 1, "")
	if err != nil || len(newest) != 1 {
		t.Fatal(newest, err)
	}
	if _, err := desk.Read(ctx, "lobby", newest[0].Seq); err != nil {
		t.Fatal(err)
	}
	wait(phone, "the read from the desk", func(ev client.Event) bool { return ev.Op == "read" && ev.Seq == newest[0].Seq })
	if u, err := phone.Unread(ctx, "lobby"); err != nil || u["lobby"].Count != 0 {
		t.Fatalf("unread after reading on the other device: %v, %v", u, err)
	}
	cursors := c.must(200, "GET", "/users/bob/cursors", key, nil)["cursors"].([]any)
	if len(cursors) != 1 || cursors[0].(map[string]any)["unread"].(float64) != 0 {
		t.Fatalf("cursors %v", cursors)
	}

	// A block: the blocked user's messages never reach the blocker, others
	// get them, and the blocker's history leaves them out.
	if err := carol.Block(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := carol.Block(ctx, "carol"); kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest {
		t.Fatalf("blocking oneself: %v", err)
	}
	if _, err := desk.Say(ctx, "lobby", "from bob", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Say(ctx, "lobby", "from alice", nil); err != nil {
		t.Fatal(err)
	}
	wait(alice, "bob's message", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.Text == "from bob" })
	wait(carol, "alice's message after bob's", func(ev client.Event) bool {
		if ev.Msg != nil && ev.Msg.From == "bob" {
			t.Fatalf("carol got bob's %q", ev.Msg.Text)
		}
		return ev.Msg != nil && ev.Msg.Text == "from alice"
	})
	hist, err := carol.History(ctx, "lobby", 50, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range hist {
		if m.From == "bob" {
			t.Fatalf("carol's history holds bob's %q", m.Text)
		}
	}
	if _, _, err := desk.DM(ctx, "carol", "hey", nil); kaiwa.ErrorCode(err) != kaiwa.CodeBlocked {
		t.Fatalf("a DM to the blocker: %v", err)
	}

	// Search: a 2-character substring and a width variant, the player's
	// channels only, each tenant its own.
	testenv.Eventually(t, "the search finds the edited message", 10*time.Second, func() bool {
		found, _, err := alice.Search(ctx, "ギル", "", 10, "")
		if err != nil || len(found) == 0 {
			return false
		}
		more, _, err := alice.Search(ctx, "guild", "lobby", 10, "")
		return err == nil && len(more) == 1 && more[0].ID == id
	})
	if _, _, err := alice.Search(ctx, strings.Repeat("長", 10000), "", 10, ""); kaiwa.ErrorCode(err) != kaiwa.CodeTooLarge {
		t.Fatalf("a 10,000-character search: %v", err)
	}
	res := c.must(200, "GET", "/messages/search?q="+url.QueryEscape("ぎるど"), key, nil)["messages"].([]any)
	if len(res) == 0 {
		t.Fatal("the API search found nothing")
	}
	if res := c.must(200, "GET", "/messages/search?q="+url.QueryEscape("ぎるど"), rival, nil)["messages"].([]any); len(res) != 0 {
		t.Fatalf("another tenant's search found %v", res)
	}

	// Typing is in no log.
	events := c.must(200, "GET", "/events?limit=500", key, nil)["events"].([]any)
	for _, e := range events {
		if strings.Contains(e.(map[string]any)["type"].(string), "typing") {
			t.Fatalf("the event log holds %v", e)
		}
	}
}
