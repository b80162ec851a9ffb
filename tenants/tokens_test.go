package tenants

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func tokenReq(user string) kaiwa.TokenRequest {
	return kaiwa.TokenRequest{User: user, Name: "Player " + user, TTL: time.Hour, Join: []string{"guild."}, Publish: []string{"*"}}
}

func issue(t testing.TB, s *Store, tenant kaiwa.TenantID, req kaiwa.TokenRequest) kaiwa.IssuedToken {
	t.Helper()
	tok, err := s.IssueToken(context.Background(), tenant, req)
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return tok
}

func TestIssueAndResolveToken(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")

	req := kaiwa.TokenRequest{
		User: "Alice.01", Name: "アリス 🗡️ O'Brien \\ \"x\"", TTL: 90 * time.Minute,
		Join: []string{"guild.", "dm:"}, Publish: []string{"*"},
	}
	before := time.Now()
	tok := issue(t, s, "a", req)
	if tenant, ok := kaiwa.CredentialTenant(tok.Token); !ok || tenant != "a" {
		t.Fatalf("token %q does not name its tenant", tok.Token)
	}
	if d := tok.ExpiresAt.Sub(before); d < 89*time.Minute || d > 91*time.Minute {
		t.Fatalf("expires in %v, want 90m", d)
	}
	id, err := s.ResolveToken(ctx, tok.Token)
	must(t, err)
	want := kaiwa.Identity{Tenant: "a", User: "Alice.01", Name: req.Name, ExpiresAt: tok.ExpiresAt, Join: req.Join, Publish: req.Publish}
	if !reflect.DeepEqual(id, want) {
		t.Fatalf("identity = %+v\nwant %+v", id, want)
	}

	// No permissions at all round-trips as empty lists.
	tok2 := issue(t, s, "a", kaiwa.TokenRequest{User: "bob", TTL: time.Minute})
	id, err = s.ResolveToken(ctx, tok2.Token)
	must(t, err)
	if id.CanJoin("x") || id.CanPublish("x") || id.Name != "" {
		t.Fatalf("identity without permissions = %+v", id)
	}

	for _, bad := range []kaiwa.TokenRequest{
		{User: "", TTL: time.Hour},
		{User: "a b", TTL: time.Hour},
		{User: "u", TTL: 0},
		{User: "u", TTL: kaiwa.MaxTokenTTL + time.Second},
		{User: "u", TTL: time.Hour, Join: []string{"bad prefix"}},
		{User: "u", TTL: time.Hour, Name: strings.Repeat("x", kaiwa.MaxNameLen+1)},
	} {
		_, err := s.IssueToken(ctx, "a", bad)
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	_, err = s.IssueToken(ctx, "nosuch", tokenReq("u"))
	wantCode(t, err, kaiwa.CodeNotFound)
	_, err = s.IssueToken(ctx, "bad tenant", tokenReq("u"))
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestResolveTokenRefusals(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	tokA := issue(t, s, "a", tokenReq("alice")).Token
	_, secret, _ := strings.Cut(tokA, ":")

	for _, bad := range []string{"", tokA + "=", "b:" + secret, "A:" + secret, kaiwa.NewCredential("a"), "nosuch:" + secret} {
		_, err := s.ResolveToken(ctx, bad)
		wantCode(t, err, kaiwa.CodeUnauthorized)
	}
	// An API key is not a user token.
	key := newTenant(t, s, "c")
	_, err := s.ResolveToken(ctx, key)
	wantCode(t, err, kaiwa.CodeUnauthorized)

	// Expiry: a minute before the end it works, at the end it is expired.
	tok := issue(t, s, "a", kaiwa.TokenRequest{User: "alice", TTL: time.Hour})
	s.SetClock(func() time.Time { return tok.ExpiresAt.Add(-time.Minute) })
	_, err = s.ResolveToken(ctx, tok.Token)
	must(t, err)
	s.SetClock(func() time.Time { return tok.ExpiresAt })
	_, err = s.ResolveToken(ctx, tok.Token)
	wantCode(t, err, kaiwa.CodeTokenExpired)
	s.SetClock(nil)

	// A disabled tenant's tokens are refused.
	must(t, s.DisableTenant(ctx, "a"))
	_, err = s.ResolveToken(ctx, tokA)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	must(t, s.EnableTenant(ctx, "a"))
	_, err = s.ResolveToken(ctx, tokA)
	must(t, err)
}

func TestRevokeTokens(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")
	// The same user name in two tenants is two users.
	a1 := issue(t, s, "a", tokenReq("alice")).Token
	a2 := issue(t, s, "a", tokenReq("alice")).Token
	other := issue(t, s, "a", tokenReq("Alice")).Token // case-sensitive: another user
	b1 := issue(t, s, "b", tokenReq("alice")).Token

	n, err := s.RevokeTokens(ctx, "b", "alice")
	if err != nil || n != 1 {
		t.Fatalf("RevokeTokens(b) = %d, %v; want 1", n, err)
	}
	for _, tok := range []string{a1, a2, other} {
		if _, err := s.ResolveToken(ctx, tok); err != nil {
			t.Fatalf("revoking b's alice touched tenant a: %v", err)
		}
	}
	n, err = s.RevokeTokens(ctx, "a", "alice")
	if err != nil || n != 2 {
		t.Fatalf("RevokeTokens(a) = %d, %v; want 2", n, err)
	}
	for _, tok := range []string{a1, a2, b1} {
		_, err := s.ResolveToken(ctx, tok)
		wantCode(t, err, kaiwa.CodeUnauthorized)
	}
	if _, err := s.ResolveToken(ctx, other); err != nil {
		t.Fatalf("revoking alice revoked Alice: %v", err)
	}
	n, err = s.RevokeTokens(ctx, "a", "alice")
	if err != nil || n != 0 {
		t.Fatalf("revoking again = %d, %v; want 0", n, err)
	}
	// A token issued after the revocation works.
	fresh := issue(t, s, "a", tokenReq("alice")).Token
	if _, err := s.ResolveToken(ctx, fresh); err != nil {
		t.Fatalf("new token after revocation: %v", err)
	}
	_, err = s.RevokeTokens(ctx, "a", "bad user")
	wantCode(t, err, kaiwa.CodeBadRequest)
}

func TestPurgeTokens(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	short := issue(t, s, "a", kaiwa.TokenRequest{User: "u", TTL: time.Minute}).Token
	long := issue(t, s, "a", kaiwa.TokenRequest{User: "u", TTL: time.Hour}).Token

	n, err := s.PurgeTokens(ctx, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("PurgeTokens(now) = %d, %v; want 0", n, err)
	}
	n, err = s.PurgeTokens(ctx, time.Now().Add(30*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PurgeTokens(+30m) = %d, %v; want 1", n, err)
	}
	_, err = s.ResolveToken(ctx, short)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	if _, err := s.ResolveToken(ctx, long); err != nil {
		t.Fatalf("the live token was purged: %v", err)
	}
}
