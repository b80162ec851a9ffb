package tenants

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// TestResolveSessionsMatchesSingleLookups: for every kind of token, good
// and bad, in one batch, ResolveSessions answers what ResolveToken,
// Sanctions and MemberChannels answer one at a time.
func TestResolveSessionsMatchesSingleLookups(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, tn := range []kaiwa.TenantID{"a", "b", "c"} {
		newTenant(t, s, tn)
	}
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.1"})
	put(t, s, kaiwa.Channel{Tenant: "a", Name: "guild.2"})
	put(t, s, kaiwa.Channel{Tenant: "b", Name: "guild.1"})
	for _, m := range []struct {
		tenant   kaiwa.TenantID
		ch, user string
	}{{"a", "guild.2", "alice"}, {"a", "guild.1", "alice"}, {"b", "guild.1", "alice"}, {"a", "guild.1", "dave"}} {
		if _, err := s.AddMember(ctx, m.tenant, m.ch, m.user); err != nil {
			t.Fatal(err)
		}
	}
	must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "alice", Kind: kaiwa.SanctionMute, Until: time.Now().Add(time.Hour), Reason: "'; DROP TABLE sanctions; --"}))
	must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "alice", Kind: kaiwa.SanctionBan}))
	must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "b", User: "alice", Kind: kaiwa.SanctionBan}))

	aliceA := issue(t, s, "a", tokenReq("alice")).Token
	aliceB := issue(t, s, "b", tokenReq("alice")).Token
	bob := issue(t, s, "a", tokenReq("bob")).Token
	revoked := issue(t, s, "a", tokenReq("dave")).Token
	if _, err := s.RevokeTokens(ctx, "a", "dave"); err != nil {
		t.Fatal(err)
	}
	expiring := issue(t, s, "a", kaiwa.TokenRequest{User: "erin", TTL: time.Minute})
	disabled := issue(t, s, "c", tokenReq("frank")).Token
	must(t, s.DisableTenant(ctx, "c"))
	_, secret, _ := strings.Cut(aliceA, ":")
	tokens := []string{
		aliceA, bob, aliceB, aliceA, // a repeat gets the same answer
		revoked, expiring.Token, disabled,
		"", "garbage", "b:" + secret, "nosuch:" + secret, kaiwa.NewCredential("a"), aliceA + "x",
	}
	s.SetClock(func() time.Time { return expiring.ExpiresAt.Add(time.Second) })
	got := s.ResolveSessions(ctx, tokens)
	if len(got) != len(tokens) {
		t.Fatalf("%d answers for %d tokens", len(got), len(tokens))
	}
	for i, tok := range tokens {
		var want kaiwa.SessionInfo
		want.Identity, want.Err = s.ResolveToken(ctx, tok)
		if want.Err == nil {
			var err1, err2 error
			want.Sanctions, err1 = s.Sanctions(ctx, want.Identity.Tenant, want.Identity.User)
			want.Channels, err2 = s.MemberChannels(ctx, want.Identity.Tenant, want.Identity.User)
			must(t, err1)
			must(t, err2)
		}
		g := got[i]
		if kaiwa.ErrorCode(g.Err) != kaiwa.ErrorCode(want.Err) || (g.Err == nil) != (want.Err == nil) {
			t.Errorf("token %d: error %v, want %v", i, g.Err, want.Err)
			continue
		}
		if want.Err != nil {
			if kaiwa.ErrorMessage(g.Err) != kaiwa.ErrorMessage(want.Err) {
				t.Errorf("token %d: %q, want %q", i, kaiwa.ErrorMessage(g.Err), kaiwa.ErrorMessage(want.Err))
			}
			continue
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("token %d:\n got %+v\nwant %+v", i, g, want)
		}
	}
	// What it says of alice in a, for a reader of the test.
	if a := got[0]; len(a.Sanctions) != 2 || !reflect.DeepEqual(a.Channels, []string{"guild.1", "guild.2"}) {
		t.Errorf("alice in a: %+v", a)
	}
	if b := got[1]; b.Sanctions == nil || len(b.Sanctions) != 0 || b.Channels == nil || len(b.Channels) != 0 {
		t.Errorf("bob: want empty, non-nil lists: %+v", b)
	}
	if got := s.ResolveSessions(ctx, nil); len(got) != 0 {
		t.Errorf("no tokens: %+v", got)
	}
}
