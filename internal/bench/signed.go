package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kaiwa-chat/kaiwa"
)

// SignedSetup provisions as its StoreSetup does, but the users' tokens are
// signed tokens the benchmark mints itself, as a game server would, with
// an HS256 key it registers for the tenant (replacing the keys of its
// earlier runs): connects then cost the UAs no token lookup.
type SignedSetup struct {
	*StoreSetup
	Keys kaiwa.SigningStore

	once   sync.Once
	kid    string
	secret []byte
	err    error
}

// key registers the run's signing key, once.
func (s *SignedSetup) key(ctx context.Context) error {
	s.once.Do(func() {
		keys, err := s.Keys.SigningKeys(ctx, s.Tenant)
		if err != nil {
			s.err = err
			return
		}
		for _, k := range keys {
			if strings.HasPrefix(k.Kid, "bench-") {
				if err := s.Keys.DeleteSigningKey(ctx, s.Tenant, k.Kid); err != nil {
					s.err = err
					return
				}
			}
		}
		var r [32]byte
		_, _ = rand.Read(r[:])
		s.secret = r[:]
		s.kid = "bench-" + hex.EncodeToString(r[:4])
		s.err = s.Keys.PutSigningKey(ctx, kaiwa.SigningKey{Tenant: s.Tenant, Kid: s.kid, Alg: kaiwa.AlgHS256, Secret: s.secret})
	})
	return s.err
}

// IssueTokens implements [Provisioner]: signed tokens, minted here.
func (s *SignedSetup) IssueTokens(ctx context.Context, users []string, ttl time.Duration) ([]string, error) {
	if err := s.key(ctx); err != nil {
		return nil, fmt.Errorf("register the signing key: %w", err)
	}
	now := time.Now()
	out := make([]string, len(users))
	for i, u := range users {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": u, "name": u, "join": []string{"*"}, "publish": []string{"*"},
			"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": fmt.Sprintf("bench-%d-%d", now.UnixNano(), i),
		})
		tok.Header["kid"] = s.kid
		signed, err := tok.SignedString(s.secret)
		if err != nil {
			return nil, err
		}
		out[i] = string(s.Tenant) + ":" + signed
	}
	return out, nil
}
