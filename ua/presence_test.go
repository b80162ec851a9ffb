package ua_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/ua"
)

// TestPresenceAcrossUAs: who is online in a channel is the users of every
// UA's sessions, and a UA that dies takes its users out of presence at
// once (it answers no more).
func TestPresenceAcrossUAs(t *testing.T) {
	s := newStack(t)
	ua1, _ := s.startUA(nil)
	b2 := s.connect("ua2")
	ua2, _ := s.UAOn(b2, "v2", nil)
	s.channel("world", kaiwa.ChannelOpen)
	ctx := ctx5(t)
	alice := s.dial(ua1, "alice")
	alice2 := s.dial(ua2, "alice") // a second device
	bob := s.dial(ua2, "bob")
	carol := s.dial(ua1, "carol") // online, not in the channel
	for _, c := range []interface {
		Join(context.Context, string) error
	}{alice, alice2, bob} {
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	users := func(p kaiwa.ChannelPresence) []string {
		var out []string
		for _, u := range p.Users {
			out = append(out, u.User)
		}
		return out
	}
	p, err := alice.Presence(ctx, "world")
	if err != nil {
		t.Fatal(err)
	}
	if got := users(p); p.Count != 2 || !slices.Equal(got, []string{"alice", "bob"}) || p.Users[0].Name != "Alice" {
		t.Errorf("presence %+v", p)
	}
	api, err := s.api.ChannelPresence(ctx, s.tenant, "world", 500)
	if err != nil || !slices.Equal(users(api), []string{"alice", "bob"}) {
		t.Errorf("API's presence %+v, %v", api, err)
	}
	if on, err := s.api.UserOnline(ctx, s.tenant, "alice", true); err != nil || !on.Online || on.Sessions != 2 {
		t.Errorf("alice online %+v %v", on, err)
	}
	if on, _ := s.api.UserOnline(ctx, s.tenant, "dave", true); on.Online {
		t.Errorf("dave online %+v", on)
	}
	// Over the presence limit only the count is told.
	if p, _ := s.api.ChannelPresence(ctx, s.tenant, "world", 1); p.Count != 2 || p.Users != nil {
		t.Errorf("past the limit %+v", p)
	}
	testenv.WantCode(t, carol.Join(ctx, "nowhere"), kaiwa.CodeNotFound)
	_, err = carol.Presence(ctx, "world")
	testenv.WantCode(t, err, kaiwa.CodeNotJoined)

	// The second UA dies (its bus connection with it): bob and alice's
	// second device are gone from presence with the next question.
	b2.Close()
	start := time.Now()
	p, err = alice.Presence(ctx, "world")
	if err != nil || p.Count != 1 || !slices.Equal(users(p), []string{"alice"}) {
		t.Errorf("after the UA died: %+v %v", p, err)
	}
	if on, _ := s.api.UserOnline(ctx, s.tenant, "bob", true); on.Online {
		t.Errorf("bob still online %+v", on)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestPresenceGraceHidesAReconnect: a user whose session ends and who is
// back within the presence grace, on another UA, is told to the others
// neither as leaving nor as joining; a user who stays away is told as
// leaving once the grace is over; leaving a channel is told at once.
func TestPresenceGraceHidesAReconnect(t *testing.T) {
	const grace = 3 * time.Second
	s := newStack(t)
	tune := func(c *ua.Config) { c.PresenceGrace = grace }
	ua1, _ := s.startUA(tune)
	ua2, _ := s.UAOn(s.connect("ua2"), "v2", tune)
	s.channel("world", kaiwa.ChannelOpen)
	ctx := context.Background()
	alice := s.dial(ua1, "alice")
	nextPresence := func(user string) (*client.Presence, time.Time) {
		t.Helper()
		for {
			p := testenv.NextEvent(t, alice, "presence").Presence
			if p.User == user {
				return p, time.Now()
			}
		}
	}
	joinWorld(t, alice)

	// Leaving the channel is told at once, not held.
	carol := s.dial(ua2, "carol")
	joinWorld(t, carol)
	if p, _ := nextPresence("carol"); p.Event != "join" {
		t.Fatalf("carol: %+v", p)
	}
	left := time.Now()
	if err := carol.Leave(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	if p, at := nextPresence("carol"); p.Event != "leave" || at.Sub(left) >= grace {
		t.Fatalf("carol's leave %+v after %v: held like a disconnect", p, at.Sub(left))
	}

	// Bob's session ends and he is back, on the other UA, within the grace.
	bob := s.dial(ua2, "bob")
	joinWorld(t, bob)
	if p, _ := nextPresence("bob"); p.Event != "join" {
		t.Fatalf("bob: %+v", p)
	}
	bob.Close()
	bob2 := s.dial(ua1, "bob")
	joinWorld(t, bob2)
	time.Sleep(grace + time.Second) // a leave not cancelled is told by now
	if _, err := bob2.Say(ctx, "world", "still here", nil); err != nil {
		t.Fatal(err)
	}
	for waiting := time.After(10 * time.Second); ; {
		var ev client.Event
		select {
		case ev = <-alice.Events():
		case <-waiting:
			t.Fatal("bob's message never came")
		}
		if ev.Op == "presence" && ev.Presence.User == "bob" {
			t.Fatalf("bob's reconnect was told: %+v", ev.Presence)
		}
		if ev.Op == "msg" && ev.Msg.Text == "still here" {
			break
		}
	}

	// Now he stays away: his leave is told once the grace is over.
	gone := time.Now()
	bob2.Close()
	if p, at := nextPresence("bob"); p.Event != "leave" || at.Sub(gone) < grace {
		t.Fatalf("bob's leave %+v after %v, want after the %v grace", p, at.Sub(gone), grace)
	}
}

// TestPresenceStormHidesAMassReconnect: when many members of a channel
// drop together, the leaves held past the first few wait for the storm
// grace: members back after the short grace but within the storm grace
// are told neither leaving nor joining; the first few were told both,
// each leave before its join; one who stays away is told as leaving once
// the storm grace is over.
func TestPresenceStormHidesAMassReconnect(t *testing.T) {
	const grace, storm = 300 * time.Millisecond, 4 * time.Second
	s := newStack(t)
	ua1, _ := s.startUA(func(c *ua.Config) { c.PresenceGrace, c.PresenceStormGrace = grace, storm })
	s.channel("world", kaiwa.ChannelOpen)
	ctx := context.Background()
	alice := s.dial(ua1, "alice")
	joinWorld(t, alice)
	const n = 12
	var users []string
	var conns []*client.Conn
	for i := range n {
		u := fmt.Sprintf("p%02d", i)
		c := s.dial(ua1, u)
		joinWorld(t, c)
		users, conns = append(users, u), append(conns, c)
	}
	// Alice has been told of the twelve joins.
	for seen := 0; seen < n; {
		if p := testenv.NextEvent(t, alice, "presence").Presence; p.Event == "join" {
			seen++
		}
	}

	// All twelve drop at once; all but the last are back after twice the
	// short grace, well within the storm grace.
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(2 * grace)
	for _, u := range users[:n-1] {
		joinWorld(t, s.dial(ua1, u))
	}
	if _, err := alice.Say(ctx, "world", "marker", nil); err != nil {
		t.Fatal(err)
	}
	told := map[string][]string{}
	for waiting := time.After(10 * time.Second); ; {
		var ev client.Event
		select {
		case ev = <-alice.Events():
		case <-waiting:
			t.Fatal("the marker never came")
		}
		if ev.Op == "presence" {
			told[ev.Presence.User] = append(told[ev.Presence.User], ev.Presence.Event)
		}
		if ev.Op == "msg" && ev.Msg.Text == "marker" {
			break
		}
	}
	// The first few leaves were held for the short grace: told, and their
	// joins after them; the storm's were not told at all.
	for u, evs := range told {
		if !slices.Equal(evs, []string{"leave", "join"}) && !(u == users[n-1] && slices.Equal(evs, []string{"leave"})) {
			t.Errorf("%s was told as %v", u, evs)
		}
	}
	if len(told) > n/2 {
		t.Errorf("%d of %d dropped members were told (%v): the storm grace held none", len(told), n, told)
	}
	// The one who stays away is told as leaving, at the latest once the
	// storm grace is over.
	if _, ok := told[users[n-1]]; !ok {
		gone := time.Now()
		for {
			p := testenv.NextEvent(t, alice, "presence").Presence
			if p.User == users[n-1] {
				if p.Event != "leave" || time.Since(gone) > storm+2*time.Second {
					t.Fatalf("%s: %+v after %v", p.User, p, time.Since(gone))
				}
				break
			}
		}
	}
}

// joinWorld joins c to the channel "world", failing the test if it cannot
// within 5 s.
func joinWorld(t *testing.T, c *client.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
}
