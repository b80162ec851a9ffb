package client_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// playersStack is a stack with the log writer and the search indexer
// running, a UA of version v and the open channel "lobby".
func playersStack(t *testing.T, v string) (*teststack.Stack, string) {
	t.Helper()
	s := teststack.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })
	w := &bus.LogWriter{Bus: s.API, Log: s.Store, Events: s.Store, MaxWait: 20 * time.Millisecond}
	go func() { defer func() { done <- struct{}{} }(); _ = w.Run(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); s.Store.RunIndexer(ctx, 20*time.Millisecond, nil) }()
	url, _ := s.UA(v, nil)
	s.Channel("lobby", kaiwa.ChannelOpen)
	return s, url
}

// player dials url as user, joined to lobby.
func player(t *testing.T, s *teststack.Stack, url, user string, resume map[string]uint64) *client.Conn {
	t.Helper()
	all := []string{"*"}
	ctx := ctxFor(t, 10*time.Second)
	c, err := client.Dial(ctx, url, client.Options{Token: s.Token(user, all, all), Resume: resume})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Join(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor returns the first event of c that ok accepts.
func waitFor(t *testing.T, c *client.Conn, what string, ok func(client.Event) bool) client.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, open := <-c.Events():
			if !open {
				t.Fatalf("%s: connection ended: %v", what, c.Err())
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within 10s", what)
		}
	}
}

func TestEditIsSeenLiveInHistoryAndAfterResume(t *testing.T) {
	t.Parallel()
	s, url := playersStack(t, "v2")
	ctx := ctxFor(t, 30*time.Second)
	alice := player(t, s, url, "alice", nil)
	bob := player(t, s, url, "bob", nil)
	id, _, err := alice.SayCID(ctx, "lobby", "helo", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, bob, "the message", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.ID == id })
	last := bob.LastSeqs()
	if _, err := alice.Edit(ctx, "lobby", id, "hello"); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, bob, "the edit", func(ev client.Event) bool { return ev.Op == "edited" })
	if ev.ID != id || ev.Change.Text != "hello" || ev.Change.EditedAt == 0 || ev.Change.Seq == 0 {
		t.Fatalf("edited event %+v %+v", ev, ev.Change)
	}
	// Someone else may not edit it; nothing changes.
	_, err = bob.Edit(ctx, "lobby", id, "pwned")
	wantCode(t, err, kaiwa.CodeForbidden)

	msgs, err := bob.History(ctx, "lobby", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Text != "hello" || msgs[0].EditedAt == 0 {
		t.Fatalf("history after the edit: %+v", msgs)
	}

	// A client away during a second edit sees the current text on resume.
	bob.Close()
	if _, err := alice.Edit(ctx, "lobby", id, "hello all"); err != nil {
		t.Fatal(err)
	}
	back := player(t, s, url, "bob", last)
	ev = waitFor(t, back, "the replayed edit", func(ev client.Event) bool { return ev.Op == "edited" && ev.Change.Text == "hello all" })
	if ev.ID != id {
		t.Fatalf("replayed edit of %s, want %s", ev.ID, id)
	}

	// The log applies the edit and keeps the text before for operators.
	testenv.Eventually(t, "the log has the edit", 10*time.Second, func() bool {
		page, err := s.Store.Messages(ctx, s.Tenant, kaiwa.MessageQuery{Channel: "lobby"})
		return err == nil && len(page.Messages) == 1 && page.Messages[0].Text == "hello all"
	})
	edits, err := s.Store.MessageEdits(ctx, s.Tenant, "lobby", id)
	if err != nil || len(edits) != 2 || edits[0].Previous != "helo" || edits[1].Text != "hello all" {
		t.Fatalf("edits %+v, %v", edits, err)
	}

	// The author deletes it: everyone is told, history drops it.
	if err := alice.Delete(ctx, "lobby", id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, back, "the deletion", func(ev client.Event) bool { return ev.Op == "deleted" && ev.ID == id })
	if msgs, _ := back.History(ctx, "lobby", 10, ""); len(msgs) != 0 {
		t.Fatalf("history after the deletion: %+v", msgs)
	}
}

func TestReplyQuotesAndReactionsCount(t *testing.T) {
	t.Parallel()
	s, url := playersStack(t, "v2")
	ctx := ctxFor(t, 30*time.Second)
	alice := player(t, s, url, "alice", nil)
	bob := player(t, s, url, "bob", nil)
	carol := player(t, s, url, "carol", nil)
	id, _, err := alice.SayCID(ctx, "lobby", "who wants to raid?", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	reply, _, err := bob.SayWith(ctx, "lobby", "me!", nil, client.SayOptions{ReplyTo: id,
		Attachments: []kaiwa.Attachment{{Type: "image", URL: "https://cdn.example.com/a.png", Width: 64, Height: 64}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, alice, "the reply", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.ID == reply })
	if ev.Msg.ReplyTo != id || ev.Msg.Quote == nil || ev.Msg.Quote.Text != "who wants to raid?" || ev.Msg.Quote.From != "alice" ||
		len(ev.Msg.Attachments) != 1 || ev.Msg.Attachments[0].URL != "https://cdn.example.com/a.png" {
		t.Fatalf("reply %+v", ev.Msg)
	}

	for _, c := range []*client.Conn{bob, carol} {
		if err := c.React(ctx, "lobby", id, "👍"); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.React(ctx, "lobby", id, "👍"); err != nil { // once per user
		t.Fatal(err)
	}
	if err := carol.Unreact(ctx, "lobby", id, "👍"); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, alice, "the reaction taken back", func(ev client.Event) bool { return ev.Op == "reaction" && !ev.Change.Added })
	if !slices.Equal(ev.Change.Reactions, []kaiwa.Reaction{{Emoji: "👍", Count: 1}}) || ev.Change.User != "carol" {
		t.Fatalf("reaction event %+v", ev.Change)
	}
	msgs, err := alice.History(ctx, "lobby", 10, "")
	if err != nil || len(msgs) != 2 || !slices.Equal(msgs[0].Reactions, []kaiwa.Reaction{{Emoji: "👍", Count: 1}}) {
		t.Fatalf("history %+v, %v", msgs, err)
	}

	// Bad input changes nothing.
	wantCode(t, alice.React(ctx, "lobby", id, strings.Repeat("x", 1024)), kaiwa.CodeTooLarge)
	s.Channel("other", kaiwa.ChannelOpen)
	if err := alice.Join(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	_, _, err = alice.SayWith(ctx, "other", "re", nil, client.SayOptions{ReplyTo: id})
	wantCode(t, err, kaiwa.CodeBadRequest)
	_, _, err = alice.SayWith(ctx, "lobby", "pic", nil, client.SayOptions{Attachments: []kaiwa.Attachment{{Type: "image", URL: "http://plain.example.com/a.png"}}})
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestReadCursorsAndUnreadCounts(t *testing.T) {
	t.Parallel()
	s, url := playersStack(t, "v2")
	ctx := ctxFor(t, 30*time.Second)
	alice := player(t, s, url, "alice", nil)
	phone := player(t, s, url, "bob", nil)
	var seq uint64
	for _, text := range []string{"one", "two"} {
		_, sq, err := alice.SayCID(ctx, "lobby", text, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		seq = sq
	}
	waitFor(t, phone, "the second message", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.Seq == seq })
	if _, err := phone.Read(ctx, "lobby", seq); err != nil {
		t.Fatal(err)
	}
	// A cursor past the end is refused.
	_, err := phone.Read(ctx, "lobby", seq+1000)
	wantCode(t, err, kaiwa.CodeBadRequest)

	phone.Close()
	for _, text := range []string{"three", "four", "five"} {
		if _, err := alice.Say(ctx, "lobby", text, nil); err != nil {
			t.Fatal(err)
		}
	}
	var unread map[string]client.Unread
	testenv.Eventually(t, "three unread", 10*time.Second, func() bool {
		c := player(t, s, url, "bob", nil)
		defer c.Close()
		unread, err = c.Unread(ctx, "lobby")
		return err == nil && unread["lobby"].Count == 3
	})
	if unread["lobby"].Read != seq {
		t.Fatalf("unread %+v, want read %d", unread, seq)
	}
	// ready says it too, for the channels the session starts in.
	resumed := player(t, s, url, "bob", map[string]uint64{"lobby": seq})
	if u := resumed.Ready().Unread["lobby"]; u.Count != 3 || u.Read != seq {
		t.Fatalf("ready's unread %+v, want 3 after %d", resumed.Ready().Unread, seq)
	}
	resumed.Close()

	// Reading on one device clears it on the other.
	desk := player(t, s, url, "bob", nil)
	laptop := player(t, s, url, "bob", nil)
	msgs, err := desk.History(ctx, "lobby", 1, "")
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if _, err := desk.Read(ctx, "lobby", msgs[0].Seq); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, laptop, "the read on the other device", func(ev client.Event) bool { return ev.Op == "read" })
	if ev.Ch != "lobby" || ev.Seq != msgs[0].Seq {
		t.Fatalf("read event %+v", ev)
	}
	if unread, err := laptop.Unread(ctx, "lobby"); err != nil || unread["lobby"].Count != 0 {
		t.Fatalf("unread after reading %+v, %v", unread, err)
	}
	cursors, err := s.Store.Cursors(ctx, s.Tenant, "bob")
	if err != nil || len(cursors) != 1 || cursors[0].Seq != msgs[0].Seq {
		t.Fatalf("cursors %+v, %v", cursors, err)
	}
}

func TestBlockedUserIsNeverDelivered(t *testing.T) {
	t.Parallel()
	s, url := playersStack(t, "v1")
	ctx := ctxFor(t, 30*time.Second)
	alice := player(t, s, url, "alice", nil)
	troll := player(t, s, url, "troll", nil)
	carol := player(t, s, url, "carol", nil)
	if _, err := troll.Say(ctx, "lobby", "before", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, alice, "the message before the block", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.Text == "before" })
	if err := alice.Block(ctx, "troll"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, alice.Block(ctx, "alice"), kaiwa.CodeBadRequest)
	if _, err := troll.Say(ctx, "lobby", "spam", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Say(ctx, "lobby", "hi", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, carol, "the troll's message", func(ev client.Event) bool { return ev.Msg != nil && ev.Msg.Text == "spam" })
	ev := waitFor(t, alice, "carol's message", func(ev client.Event) bool {
		if ev.Msg != nil && ev.Msg.From == "troll" {
			t.Fatalf("alice got the troll's %q", ev.Msg.Text)
		}
		return ev.Msg != nil && ev.Msg.Text == "hi"
	})
	_ = ev
	msgs, err := alice.History(ctx, "lobby", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.From == "troll" {
			t.Fatalf("alice's history holds the troll's %q", m.Text)
		}
	}
	if msgs, _ := carol.History(ctx, "lobby", 10, ""); len(msgs) != 3 {
		t.Fatalf("carol's history has %d messages, want 3", len(msgs))
	}
	_, _, err = troll.DM(ctx, "alice", "psst", nil)
	wantCode(t, err, kaiwa.CodeBlocked)
	_, err = troll.Say(ctx, "dm:alice:troll", "psst", nil) // the same as a dm
	wantCode(t, err, kaiwa.CodeBlocked)
	if err := alice.Unblock(ctx, "troll"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the DM goes through once unblocked", 5*time.Second, func() bool {
		_, _, err := troll.DM(ctx, "alice", "sorry", nil)
		return err == nil
	})
}

func TestTypingIsNeitherStoredNorReplayed(t *testing.T) {
	t.Parallel()
	s, url := playersStack(t, "v2")
	ctx := ctxFor(t, 30*time.Second)
	alice := player(t, s, url, "alice", nil)
	bob := player(t, s, url, "bob", nil)
	if err := alice.Typing(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, bob, "typing", func(ev client.Event) bool { return ev.Op == "typing" })
	if ev.Presence == nil || ev.Presence.User != "alice" || ev.Ch != "lobby" {
		t.Fatalf("typing %+v", ev)
	}
	// In a direct channel it goes to the other user only.
	if err := alice.Typing(ctx, "dm:alice:bob"); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, bob, "typing in the direct channel", func(ev client.Event) bool { return ev.Op == "typing" })
	if ev.Presence.User != "alice" || ev.Ch != "dm:alice:bob" {
		t.Fatalf("typing %+v", ev)
	}
	carol := player(t, s, url, "carol", nil)
	wantCode(t, carol.Typing(ctx, "dm:alice:bob"), kaiwa.CodeNotJoined)
	wantCode(t, alice.Typing(ctx, "@alice"), kaiwa.CodeBadRequest)
	if _, err := alice.Say(ctx, "lobby", "done", nil); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := bob.History(ctx, "lobby", 10, ""); len(msgs) != 1 || msgs[0].Text != "done" {
		t.Fatalf("history %+v", msgs)
	}
	testenv.Eventually(t, "the log has the message", 10*time.Second, func() bool {
		page, err := s.Store.Messages(ctx, s.Tenant, kaiwa.MessageQuery{})
		return err == nil && len(page.Messages) == 1
	})
	page, err := s.Store.Events(ctx, s.Tenant, kaiwa.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Events {
		if strings.Contains(e.Type, "typing") || strings.Contains(string(e.Detail), "typing") {
			t.Fatalf("the event log holds %+v", e)
		}
	}
}

func TestSearchFindsJapaneseInOwnChannelsOnly(t *testing.T) {
	t.Parallel()
	s, url := playersStack(t, "v2")
	ctx := ctxFor(t, 30*time.Second)
	s.Channel("guild.secret", kaiwa.ChannelClosed)
	alice := player(t, s, url, "alice", nil)
	mallory := player(t, s, url, "mallory", nil)
	if _, err := alice.Say(ctx, "lobby", "今夜ギルド戦やろう GUILD", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.AddMember(ctx, s.Tenant, "guild.secret", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.API.Publish(ctx, kaiwa.Message{Tenant: s.Tenant, Channel: "guild.secret", Text: "ギルドの秘密", System: true}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ギル", "ぎるど", "ｷﾞﾙﾄﾞ", "ＧＵＩＬＤ", "guild"} {
		testenv.Eventually(t, "search finds "+q, 10*time.Second, func() bool {
			msgs, _, err := mallory.Search(ctx, q, "", 10, "")
			return err == nil && len(msgs) == 1 && msgs[0].Ch == "lobby"
		})
	}
	_, _, err := mallory.Search(ctx, "秘密", "guild.secret", 10, "")
	wantCode(t, err, kaiwa.CodeNotJoined)
	_, _, err = mallory.Search(ctx, strings.Repeat("あ", 10000), "", 10, "")
	wantCode(t, err, kaiwa.CodeTooLarge)
	_, _, err = mallory.Search(ctx, "a", "", 10, "")
	wantCode(t, err, kaiwa.CodeBadRequest)
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, err error, code kaiwa.Code) {
	t.Helper()
	if kaiwa.ErrorCode(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}
