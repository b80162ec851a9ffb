package signing_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// env is a stack with the core acting as the API does, and two UAs.
type env struct {
	*teststack.Stack
	core     *kaiwa.Core
	ua1, ua2 string
}

func newEnv(t *testing.T) *env {
	s := teststack.New(t)
	e := &env{Stack: s, core: &kaiwa.Core{
		Tenants: s.Store, Tokens: s.Store, Signing: s.Store, Sanctions: s.Store, Bus: s.API, Events: s.API,
	}}
	e.ua1, _ = s.UA("v1", nil)
	e.ua2, _ = s.UA("v2", nil)
	s.Channel("world", kaiwa.ChannelOpen)
	return e
}

var jtiSeq atomic.Int64

// claims returns the claims of a token for user valid for an hour.
func claims(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": user, "name": "N-" + user, "join": []string{"world"}, "publish": []string{"world", "dm:"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprintf("j%d", jtiSeq.Add(1)),
	}
}

// mint signs c with key (kid in the header) and prefixes the tenant.
func mint(t testing.TB, tenant kaiwa.TenantID, method jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(tenant) + ":" + s
}

func dial(t testing.TB, url, token string) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Token: token})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

var secret = []byte("0123456789abcdef0123456789abcdef-game-server")

func TestSignedTokenChatsAndRevocationReachesEveryUA(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if _, err := e.core.AddSigningKey(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.SigningKey{Kid: "k1", Alg: kaiwa.AlgHS256, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	ac := claims("alice")
	alice1, err := dial(t, e.ua1, mint(t, e.Tenant, jwt.SigningMethodHS256, "k1", secret, ac))
	if err != nil {
		t.Fatal(err)
	}
	// The same token on the other UA: both sessions hold jti.
	aliceTok := mint(t, e.Tenant, jwt.SigningMethodHS256, "k1", secret, ac)
	alice2, err := dial(t, e.ua2, aliceTok)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := dial(t, e.ua2, mint(t, e.Tenant, jwt.SigningMethodHS256, "k1", secret, claims("bob")))
	if err != nil {
		t.Fatal(err)
	}
	if r := alice1.Ready(); r.User != "alice" || r.Name != "N-alice" {
		t.Errorf("ready %+v", r)
	}
	for _, c := range []*client.Conn{alice1, bob} {
		if err := c.Join(ctx, "world"); err != nil {
			t.Fatal(err)
		}
	}
	id, err := alice1.Say(ctx, "world", "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := testenv.NextEvent(t, bob, "msg").Msg; m.ID != id || m.From != "alice" || m.Text != "hello" {
		t.Errorf("bob got %+v", m)
	}
	// The token's publish prefixes hold: not "other".
	e.Channel("other", kaiwa.ChannelOpen)
	testenv.WantCode(t, alice1.Join(ctx, "other"), kaiwa.CodeForbidden)

	// Revoking the token id closes both of alice's sessions, on both UAs,
	// within a second; bob stays.
	start := time.Now()
	if err := e.core.RevokeTokenID(ctx, kaiwa.ActorAPI, e.Tenant, ac["jti"].(string)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Conn{alice1, alice2} {
		select {
		case <-c.Done():
		case <-time.After(time.Second - time.Since(start)):
			t.Fatal("a session of the revoked token is still open after 1 s")
		}
		if code, _, _ := c.CloseStatus(); code != 4001 {
			t.Errorf("close code %d, want 4001", code)
		}
	}
	for _, url := range []string{e.ua1, e.ua2} {
		_, err := dial(t, url, aliceTok)
		testenv.WantCode(t, err, kaiwa.CodeUnauthorized)
	}
	if _, err := bob.Say(ctx, "world", "still here", nil); err != nil {
		t.Errorf("bob: %v", err)
	}

	// Revoking a user's tokens refuses the signed ones issued before.
	old := claims("carol")
	old["iat"] = time.Now().Add(-2 * time.Second).Unix()
	carolTok := mint(t, e.Tenant, jwt.SigningMethodHS256, "k1", secret, old)
	if _, err := dial(t, e.ua1, carolTok); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.RevokeTokens(ctx, kaiwa.ActorAPI, e.Tenant, "carol"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "carol's old token refused", time.Second, func() bool {
		_, err := dial(t, e.ua2, carolTok)
		return kaiwa.IsCode(err, kaiwa.CodeUnauthorized)
	})
	// Bans apply to signed tokens, from the UA's own list.
	if _, err := e.core.Sanction(ctx, kaiwa.ActorAPI, kaiwa.Sanction{Tenant: e.Tenant, User: "dave", Kind: kaiwa.SanctionBan}); err != nil {
		t.Fatal(err)
	}
	daveTok := mint(t, e.Tenant, jwt.SigningMethodHS256, "k1", secret, claims("dave"))
	testenv.Eventually(t, "dave banned", time.Second, func() bool {
		_, err := dial(t, e.ua1, daveTok)
		return kaiwa.IsCode(err, kaiwa.CodeBanned)
	})
	if err := e.core.Lift(ctx, kaiwa.ActorAPI, e.Tenant, "dave", kaiwa.SanctionBan); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "dave admitted after the ban is lifted", time.Second, func() bool {
		_, err := dial(t, e.ua1, daveTok)
		return err == nil
	})
	// Registered tokens work as before, on the same UAs.
	if _, err := dial(t, e.ua1, e.Token("erin", []string{"*"}, []string{"*"})); err != nil {
		t.Errorf("registered token: %v", err)
	}
}

func TestBadSignedTokensAreRefused(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, k := range []kaiwa.SigningKey{
		{Kid: "hs", Alg: kaiwa.AlgHS256, Secret: secret},
		{Kid: "ed", Alg: kaiwa.AlgEdDSA, PublicKey: pemOf(t, edPub)},
		{Kid: "ec", Alg: kaiwa.AlgES256, PublicKey: pemOf(t, &ecPriv.PublicKey)},
	} {
		if _, err := e.core.AddSigningKey(ctx, kaiwa.ActorAPI, e.Tenant, k); err != nil {
			t.Fatal(k.Kid, err)
		}
	}
	// Another tenant with a key of the same kid and its own secret.
	other := kaiwa.TenantID("other")
	if _, err := e.Store.CreateTenant(ctx, other, "Other"); err != nil {
		t.Fatal(err)
	}
	otherSecret := []byte("another tenant's secret, 32 bytes or more")
	if _, err := e.core.AddSigningKey(ctx, kaiwa.ActorAPI, other, kaiwa.SigningKey{Kid: "hs", Alg: kaiwa.AlgHS256, Secret: otherSecret}); err != nil {
		t.Fatal(err)
	}
	// Good tokens of every algorithm.
	for _, tok := range []string{
		mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, claims("u1")),
		mint(t, e.Tenant, jwt.SigningMethodEdDSA, "ed", edPriv, claims("u2")),
		mint(t, e.Tenant, jwt.SigningMethodES256, "ec", ecPriv, claims("u3")),
		mint(t, other, jwt.SigningMethodHS256, "hs", otherSecret, claims("u4")),
	} {
		if _, err := dial(t, e.ua2, tok); err != nil {
			t.Errorf("good token refused: %v", err)
		}
	}
	expired := claims("u5")
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	withinSkew := claims("u6")
	withinSkew["exp"] = time.Now().Add(-10 * time.Second).Unix()
	future := claims("u7")
	future["iat"] = time.Now().Add(time.Hour).Unix()
	noJTI := claims("u8")
	delete(noJTI, "jti")
	wrongTid := claims("u9")
	wrongTid["tid"] = string(other)
	tooLong := claims("u10")
	tooLong["exp"] = time.Now().Add(kaiwa.MaxTokenTTL + time.Hour).Unix()
	none := mint(t, e.Tenant, jwt.SigningMethodNone, "hs", jwt.UnsafeAllowNoneSignatureType, claims("u11"))
	// HS256 signed with the Ed25519 public key's bytes: algorithm confusion.
	confused := mint(t, e.Tenant, jwt.SigningMethodHS256, "ed", []byte(pemOf(t, edPub)), claims("u12"))
	for name, c := range map[string]struct {
		tok  string
		code kaiwa.Code
	}{
		"forged":       {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", []byte("not the secret, but long enough to sign"), claims("x")), kaiwa.CodeUnauthorized},
		"alg none":     {none, kaiwa.CodeUnauthorized},
		"wrong kid":    {mint(t, e.Tenant, jwt.SigningMethodHS256, "nope", secret, claims("x")), kaiwa.CodeUnauthorized},
		"no kid":       {mint(t, e.Tenant, jwt.SigningMethodHS256, "", secret, claims("x")), kaiwa.CodeUnauthorized},
		"other tenant": {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", otherSecret, claims("x")), kaiwa.CodeUnauthorized},
		"prefix moved": {mint(t, other, jwt.SigningMethodHS256, "hs", secret, claims("x")), kaiwa.CodeUnauthorized},
		"expired":      {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, expired), kaiwa.CodeTokenExpired},
		"future iat":   {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, future), kaiwa.CodeUnauthorized},
		"no jti":       {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, noJTI), kaiwa.CodeUnauthorized},
		"wrong tid":    {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, wrongTid), kaiwa.CodeUnauthorized},
		"too long":     {mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, tooLong), kaiwa.CodeUnauthorized},
		"alg confused": {confused, kaiwa.CodeUnauthorized},
	} {
		_, err := dial(t, e.ua1, c.tok)
		if kaiwa.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want %s", name, err, c.code)
		}
	}
	if _, err := dial(t, e.ua1, mint(t, e.Tenant, jwt.SigningMethodHS256, "hs", secret, withinSkew)); err != nil {
		t.Errorf("a token expired 10 s ago (within the skew allowance) was refused: %v", err)
	}
	// Deleting a key refuses its tokens from then on.
	if err := e.core.DeleteSigningKey(ctx, kaiwa.ActorAPI, e.Tenant, "ed"); err != nil {
		t.Fatal(err)
	}
	tok := mint(t, e.Tenant, jwt.SigningMethodEdDSA, "ed", edPriv, claims("u13"))
	testenv.Eventually(t, "the deleted key's tokens refused", time.Second, func() bool {
		_, err := dial(t, e.ua1, tok)
		return kaiwa.IsCode(err, kaiwa.CodeUnauthorized)
	})
}

func pemOf(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
