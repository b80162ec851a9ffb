package tenants

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

func TestCreateTenant(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()

	key := newTenant(t, s, "acme")
	if tenant, ok := kaiwa.CredentialTenant(key); !ok || tenant != "acme" {
		t.Fatalf("key %q does not name its tenant", key)
	}
	_, err := s.CreateTenant(ctx, "acme", "again")
	wantCode(t, err, kaiwa.CodeConflict)
	// Names are case-sensitive: "Acme" is another tenant.
	newTenant(t, s, "Acme")
	for _, bad := range []kaiwa.TenantID{"", "has space", "a/b", "x:y", kaiwa.TenantID(strings.Repeat("a", 65)), "'; DROP TABLE tenants; --"} {
		_, err := s.CreateTenant(ctx, bad, "bad")
		wantCode(t, err, kaiwa.CodeBadRequest)
	}
	_, err = s.CreateTenant(ctx, "longname", strings.Repeat("名", MaxTenantNameLen+1))
	wantCode(t, err, kaiwa.CodeBadRequest)
	_, err = s.CreateTenant(ctx, "badutf8", "\xff")
	wantCode(t, err, kaiwa.CodeBadRequest)
	_, err = s.CreateTenant(ctx, "noname", "")
	must(t, err)

	list, err := s.Tenants(ctx)
	must(t, err)
	var ids []string
	for _, tn := range list {
		ids = append(ids, string(tn.ID))
	}
	if got := strings.Join(ids, ","); got != "Acme,acme,noname" {
		t.Fatalf("Tenants = %s", got)
	}
	if list[1].Name != "Game acme" || list[1].Disabled || !reflect.DeepEqual(list[1].Settings, kaiwa.Settings{}) ||
		time.Since(list[1].CreatedAt) > time.Minute || list[2].Name != "noname" {
		t.Fatalf("tenant acme = %+v, noname = %+v", list[1], list[2])
	}
}

func TestAuthenticateKey(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	keyA := newTenant(t, s, "a")
	keyB := newTenant(t, s, "b")

	for key, want := range map[string]kaiwa.TenantID{keyA: "a", keyB: "b"} {
		got, err := s.AuthenticateKey(ctx, key)
		if err != nil || got != want {
			t.Fatalf("AuthenticateKey = %q, %v; want %q", got, err, want)
		}
	}
	// B's secret under A's name (and the reverse) is nobody's key.
	_, secretB, _ := strings.Cut(keyB, ":")
	_, secretA, _ := strings.Cut(keyA, ":")
	for _, bad := range []string{
		"", "a", "a:", "a:" + secretB, "b:" + secretA, "A:" + secretA, keyA + "x", keyA[:len(keyA)-1],
		kaiwa.NewCredential("a"), kaiwa.NewCredential("nosuch"), "a:" + strings.Repeat("'", 43),
	} {
		_, err := s.AuthenticateKey(ctx, bad)
		wantCode(t, err, kaiwa.CodeUnauthorized)
	}

	// A second key works alongside the first until revoked.
	key2, err := s.RotateKey(ctx, "a")
	must(t, err)
	if key2 == keyA {
		t.Fatal("RotateKey returned the old key")
	}
	for _, k := range []string{keyA, key2} {
		if got, err := s.AuthenticateKey(ctx, k); err != nil || got != "a" {
			t.Fatalf("AuthenticateKey after rotate = %q, %v", got, err)
		}
	}
	_, err = s.RotateKey(ctx, "nosuch")
	wantCode(t, err, kaiwa.CodeNotFound)

	keys, err := s.APIKeys(ctx, "a")
	must(t, err)
	if len(keys) != 2 || !keys[0].RevokedAt.IsZero() || keys[0].LastUsedAt.IsZero() {
		t.Fatalf("APIKeys = %+v", keys)
	}
	wantCode(t, s.RevokeKey(ctx, "b", keys[0].ID), kaiwa.CodeNotFound) // not b's key
	must(t, s.RevokeKey(ctx, "a", keys[0].ID))
	wantCode(t, s.RevokeKey(ctx, "a", keys[0].ID), kaiwa.CodeNotFound) // already revoked
	_, err = s.AuthenticateKey(ctx, keyA)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	if _, err := s.AuthenticateKey(ctx, key2); err != nil {
		t.Fatalf("the other key stopped working: %v", err)
	}
	_, err = s.APIKeys(ctx, "nosuch")
	wantCode(t, err, kaiwa.CodeNotFound)

	// A disabled tenant's keys fail until it is enabled again; the other
	// tenant is untouched.
	must(t, s.DisableTenant(ctx, "a"))
	must(t, s.DisableTenant(ctx, "a")) // twice is fine
	_, err = s.AuthenticateKey(ctx, key2)
	wantCode(t, err, kaiwa.CodeUnauthorized)
	if _, err := s.AuthenticateKey(ctx, keyB); err != nil {
		t.Fatalf("disabling a broke b: %v", err)
	}
	must(t, s.EnableTenant(ctx, "a"))
	if _, err := s.AuthenticateKey(ctx, key2); err != nil {
		t.Fatalf("after enable: %v", err)
	}
	wantCode(t, s.DisableTenant(ctx, "nosuch"), kaiwa.CodeNotFound)
	wantCode(t, s.DisableTenant(ctx, "bad id"), kaiwa.CodeBadRequest)
}

func TestAuthenticateKeyRecordsUseAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	key := newTenant(t, s, "a")
	lastUsed := func() time.Time {
		t.Helper()
		keys, err := s.APIKeys(ctx, "a")
		must(t, err)
		return keys[0].LastUsedAt
	}
	if !lastUsed().IsZero() {
		t.Fatal("a new key has been used")
	}

	base := time.Now().UTC().Truncate(time.Millisecond)
	now := base
	s.SetClock(func() time.Time { return now })
	_, err := s.AuthenticateKey(ctx, key)
	must(t, err)
	if got := lastUsed(); !got.Equal(base) {
		t.Fatalf("last used = %v, want %v", got, base)
	}
	now = base.Add(30 * time.Second)
	_, err = s.AuthenticateKey(ctx, key)
	must(t, err)
	if got := lastUsed(); !got.Equal(base) {
		t.Fatalf("last used rewritten within the interval: %v", got)
	}
	now = base.Add(61 * time.Second)
	_, err = s.AuthenticateKey(ctx, key)
	must(t, err)
	if got := lastUsed(); !got.Equal(now) {
		t.Fatalf("last used = %v after the interval, want %v", got, now)
	}
}

func TestTenantSettings(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	newTenant(t, s, "b")

	got, err := s.TenantSettings(ctx, "a")
	if err != nil || !reflect.DeepEqual(got, kaiwa.DefaultSettings()) {
		t.Fatalf("TenantSettings of a new tenant = %+v, %v", got, err)
	}
	must(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{MaxTextLen: 200, RateOps: 2.5}))
	must(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{MaxTextLen: 200, RateOps: 2.5})) // unchanged is fine
	want := kaiwa.DefaultSettings()
	want.MaxTextLen, want.RateOps = 200, 2.5
	if got, err := s.TenantSettings(ctx, "a"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("TenantSettings = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.TenantSettings(ctx, "b"); err != nil || !reflect.DeepEqual(got, kaiwa.DefaultSettings()) {
		t.Fatalf("b's settings changed with a's: %+v, %v", got, err)
	}
	list, err := s.Tenants(ctx)
	must(t, err)
	if !reflect.DeepEqual(list[0].Settings, kaiwa.Settings{MaxTextLen: 200, RateOps: 2.5}) {
		t.Fatalf("Tenants shows settings %+v", list[0].Settings)
	}

	_, err = s.TenantSettings(ctx, "nosuch")
	wantCode(t, err, kaiwa.CodeNotFound)
	wantCode(t, s.SetTenantSettings(ctx, "nosuch", kaiwa.Settings{}), kaiwa.CodeNotFound)
	wantCode(t, s.SetTenantSettings(ctx, "a", kaiwa.Settings{RateBurst: -1}), kaiwa.CodeBadRequest)
	_, err = s.TenantSettings(ctx, "A")
	wantCode(t, err, kaiwa.CodeNotFound)
}

func TestRevokeKeyKeepsOneActive(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	first := newTenant(t, s, "a")
	newTenant(t, s, "b")

	keys, err := s.APIKeys(ctx, "a")
	must(t, err)
	if len(keys) != 1 {
		t.Fatalf("APIKeys = %+v", keys)
	}
	wantCode(t, s.RevokeKey(ctx, "a", keys[0].ID), kaiwa.CodeConflict)
	if _, err := s.AuthenticateKey(ctx, first); err != nil {
		t.Fatalf("the refused revocation broke the key: %v", err)
	}

	// With a second key, either may go, but not both; concurrent
	// revocations of the two cannot both succeed.
	for round := range 5 {
		if _, err := s.RotateKey(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		keys, err := s.APIKeys(ctx, "a")
		must(t, err)
		var active []int64
		for _, k := range keys {
			if k.RevokedAt.IsZero() {
				active = append(active, k.ID)
			}
		}
		if len(active) != 2 {
			t.Fatalf("round %d: %d active keys, want 2", round, len(active))
		}
		errs := make(chan error, 2)
		for _, id := range active {
			go func() { errs <- s.RevokeKey(ctx, "a", id) }()
		}
		codes := map[kaiwa.Code]int{}
		for range 2 {
			codes[kaiwa.ErrorCode(<-errs)]++
		}
		if codes[""] != 1 || codes[kaiwa.CodeConflict] != 1 {
			t.Fatalf("round %d: concurrent revocations ended with %v", round, codes)
		}
	}

	// Tenant b can neither list nor revoke a's keys; its own are apart.
	bKeys, err := s.APIKeys(ctx, "b")
	must(t, err)
	if len(bKeys) != 1 {
		t.Fatalf("b's keys = %+v", bKeys)
	}
	aKeys, err := s.APIKeys(ctx, "a")
	must(t, err)
	for _, k := range aKeys {
		if k.ID == bKeys[0].ID {
			t.Fatal("a lists b's key")
		}
		wantCode(t, s.RevokeKey(ctx, "b", k.ID), kaiwa.CodeNotFound)
	}
	wantCode(t, s.RevokeKey(ctx, "a", bKeys[0].ID), kaiwa.CodeNotFound)
	wantCode(t, s.RevokeKey(ctx, "nosuch", 1), kaiwa.CodeNotFound)
	wantCode(t, s.RevokeKey(ctx, "bad id", 1), kaiwa.CodeBadRequest)
}

func TestSetTenantSettingsChecks(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	newTenant(t, s, "a")
	good := kaiwa.Settings{
		NGPolicy: kaiwa.NGMask, RetentionDays: 7, MaxChannelMembers: 50,
		AllowedVersions: []string{"v2"}, AllowedOrigins: []string{"https://*.example.com"}, APIRate: 5,
	}
	must(t, s.SetTenantSettings(ctx, "a", good))
	got, err := s.TenantSettings(ctx, "a")
	must(t, err)
	if want := good.WithDefaults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("TenantSettings = %+v, want %+v", got, want)
	}
	for name, bad := range map[string]kaiwa.Settings{
		"policy":    {NGPolicy: "shout"},
		"retention": {RetentionDays: 4000},
		"members":   {MaxChannelMembers: -1},
		"version":   {AllowedVersions: []string{""}},
		"origin":    {AllowedOrigins: []string{"https://a b"}},
		"nan rate":  {APIRate: math.NaN()},
		"inf rate":  {RateOps: math.Inf(1)},
	} {
		if err := s.SetTenantSettings(ctx, "a", bad); kaiwa.ErrorCode(err) != kaiwa.CodeBadRequest {
			t.Errorf("%s: SetTenantSettings = %v, want bad_request", name, err)
		}
	}
	if got2, err := s.TenantSettings(ctx, "a"); err != nil || !reflect.DeepEqual(got2, got) {
		t.Fatalf("refused settings changed the tenant: %+v, %v", got2, err)
	}
}
