package tenants

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func sanctionsOf(t testing.TB, s *Store, tenant kaiwa.TenantID, user string) []kaiwa.Sanction {
	t.Helper()
	list, err := s.Sanctions(context.Background(), tenant, user)
	must(t, err)
	return list
}

func TestSanctions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	now := time.Now().UTC().Truncate(time.Millisecond)
	s.SetClock(func() time.Time { return now })

	if list := sanctionsOf(t, s, "a", "bob"); list == nil || len(list) != 0 {
		t.Fatalf("sanctions of nobody = %#v", list)
	}
	mute := kaiwa.Sanction{Tenant: "a", User: "bob", Kind: kaiwa.SanctionMute, Until: now.Add(time.Hour), Reason: "spam 🐉 '; --", CreatedAt: now.Add(-time.Second)}
	ban := kaiwa.Sanction{Tenant: "a", User: "bob", Kind: kaiwa.SanctionBan}
	must(t, s.PutSanction(ctx, mute))
	must(t, s.PutSanction(ctx, ban))
	ban.CreatedAt = now // a zero CreatedAt is now
	if got := sanctionsOf(t, s, "a", "bob"); !reflect.DeepEqual(got, []kaiwa.Sanction{ban, mute}) {
		t.Fatalf("Sanctions = %+v\nwant %+v", got, []kaiwa.Sanction{ban, mute})
	}

	// Putting again replaces; times are kept to the millisecond.
	mute2 := mute
	mute2.Until, mute2.Reason, mute2.CreatedAt = now.Add(2*time.Hour+time.Microsecond), "", now.Add(time.Nanosecond)
	must(t, s.PutSanction(ctx, mute2))
	got := sanctionsOf(t, s, "a", "bob")
	if len(got) != 2 || !got[1].Until.Equal(now.Add(2*time.Hour)) || got[1].Reason != "" || !got[1].CreatedAt.Equal(now) {
		t.Fatalf("replaced mute = %+v", got)
	}

	// A sanction whose end has come is no longer in force, and there is
	// nothing to lift.
	s.SetClock(func() time.Time { return now.Add(2 * time.Hour) })
	if got := sanctionsOf(t, s, "a", "bob"); len(got) != 1 || got[0].Kind != kaiwa.SanctionBan {
		t.Fatalf("sanctions after the mute ended = %+v", got)
	}
	wantCode(t, s.DeleteSanction(ctx, "a", "bob", kaiwa.SanctionMute), kaiwa.CodeNotFound)
	must(t, s.DeleteSanction(ctx, "a", "bob", kaiwa.SanctionBan))
	wantCode(t, s.DeleteSanction(ctx, "a", "bob", kaiwa.SanctionBan), kaiwa.CodeNotFound)
	if got := sanctionsOf(t, s, "a", "bob"); len(got) != 0 {
		t.Fatalf("sanctions after lifting = %+v", got)
	}
	// A sanction put with an end already past is stored but not in force.
	must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "carol", Kind: kaiwa.SanctionMute, Until: now}))
	if got := sanctionsOf(t, s, "a", "carol"); len(got) != 0 {
		t.Fatalf("a past sanction is in force: %+v", got)
	}

	for name, bad := range map[string]kaiwa.Sanction{
		"kind":   {Tenant: "a", User: "bob", Kind: "exile"},
		"user":   {Tenant: "a", User: "bad user", Kind: kaiwa.SanctionBan},
		"tenant": {Tenant: "", User: "bob", Kind: kaiwa.SanctionBan},
		"reason": {Tenant: "a", User: "bob", Kind: kaiwa.SanctionBan, Reason: strings.Repeat("r", kaiwa.MaxReasonLen+1)},
		"utf-8":  {Tenant: "a", User: "bob", Kind: kaiwa.SanctionBan, Reason: "\xff"},
	} {
		if err := s.PutSanction(ctx, bad); kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest {
			t.Errorf("PutSanction %s: %v, want bad_request", name, err)
		}
	}
	wantCode(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "nosuch", User: "bob", Kind: kaiwa.SanctionBan}), kaiwa.CodeNotFound)
	wantCode(t, s.DeleteSanction(ctx, "a", "bob", "exile"), kaiwa.CodeBadRequest)
	wantCode(t, s.DeleteSanction(ctx, "a", "", kaiwa.SanctionBan), kaiwa.CodeBadRequest)
	_, err := s.Sanctions(ctx, "a", "bad user")
	wantCode(t, err, kaiwa.CodeBadRequest)
	if err := s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "bob", Kind: kaiwa.SanctionBan, Reason: strings.Repeat("理", kaiwa.MaxReasonLen)}); err != nil {
		t.Fatalf("a reason of %d characters: %v", kaiwa.MaxReasonLen, err)
	}
}

func TestSanctionsAreIsolatedByTenant(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "a", User: "bob", Kind: kaiwa.SanctionBan, Reason: "a's ban"}))

	if got := sanctionsOf(t, s, "b", "bob"); len(got) != 0 {
		t.Fatalf("b sees a's ban: %+v", got)
	}
	wantCode(t, s.DeleteSanction(ctx, "b", "bob", kaiwa.SanctionBan), kaiwa.CodeNotFound)
	// b's own ban of its bob is apart from a's.
	must(t, s.PutSanction(ctx, kaiwa.Sanction{Tenant: "b", User: "bob", Kind: kaiwa.SanctionBan, Reason: "b's ban"}))
	must(t, s.DeleteSanction(ctx, "b", "bob", kaiwa.SanctionBan))
	got := sanctionsOf(t, s, "a", "bob")
	if len(got) != 1 || got[0].Reason != "a's ban" || got[0].Tenant != "a" {
		t.Fatalf("a's sanctions after b's changes = %+v", got)
	}
	// User ids are case-sensitive.
	if got := sanctionsOf(t, s, "a", "Bob"); len(got) != 0 {
		t.Fatalf("Bob has bob's ban: %+v", got)
	}
}
