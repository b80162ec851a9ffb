package ua_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
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
