package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// IssueToken makes a token for a user of the tenant, valid for req.TTL with
// req's join and publish prefixes. Only its hash is stored; the token is
// returned once. [kaiwa.CodeNotFound] for an unknown tenant.
func (s *Store) IssueToken(ctx context.Context, tenant kaiwa.TenantID, req kaiwa.TokenRequest) (kaiwa.IssuedToken, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.IssuedToken{}, err
	}
	if err := req.Check(); err != nil {
		return kaiwa.IssuedToken{}, err
	}
	join, err := encodePrefixes(req.Join)
	if err != nil {
		return kaiwa.IssuedToken{}, err
	}
	publish, err := encodePrefixes(req.Publish)
	if err != nil {
		return kaiwa.IssuedToken{}, err
	}
	now := s.clock()
	tok := kaiwa.IssuedToken{
		Token:     kaiwa.NewCredential(tenant),
		ExpiresAt: now.Add(req.TTL).Truncate(time.Millisecond),
	}
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO user_tokens
			(tenant_id, user_id, name, token_hash, join_prefixes, publish_prefixes, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		tenant, req.User, req.Name, kaiwa.HashCredential(tok.Token), join, publish, tok.ExpiresAt, now)
	if mysqlErrno(err) == errNoReferencedRow {
		return kaiwa.IssuedToken{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", tenant)
	}
	if err != nil {
		return kaiwa.IssuedToken{}, dbError("issue token", err)
	}
	return tok, nil
}

func encodePrefixes(p []string) (string, error) {
	if p == nil {
		p = []string{}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode permissions: %w", err)
	}
	return string(b), nil
}

// ResolveToken returns the identity a user token stands for:
// [kaiwa.CodeUnauthorized] when it is malformed, unknown or revoked, or its
// tenant disabled; [kaiwa.CodeTokenExpired] when it has expired.
func (s *Store) ResolveToken(ctx context.Context, token string) (kaiwa.Identity, error) {
	tenant, ok := kaiwa.CredentialTenant(token)
	if !ok {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	var row tokenRow
	err := s.db.QueryRowContext(ctx, `
		SELECT u.user_id, u.name, u.join_prefixes, u.publish_prefixes, u.expires_at, u.revoked_at, t.disabled
		FROM user_tokens u JOIN tenants t ON t.id = u.tenant_id
		WHERE u.tenant_id = ? AND u.token_hash = ?`,
		tenant, kaiwa.HashCredential(token)).
		Scan(&row.user, &row.name, &row.join, &row.publish, &row.expires, &row.revoked, &row.disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	if err != nil {
		return kaiwa.Identity{}, dbError("resolve token", err)
	}
	return row.identity(tenant, s.clock())
}

// tokenRow is a stored token as read, before it is checked.
type tokenRow struct {
	user, name, join, publish string
	expires                   time.Time
	revoked                   sql.NullTime
	disabled                  bool
}

// identity checks the token (revoked, tenant disabled, expired at now) and
// returns the identity it grants.
func (r *tokenRow) identity(tenant kaiwa.TenantID, now time.Time) (kaiwa.Identity, error) {
	switch {
	case r.revoked.Valid:
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "token revoked")
	case r.disabled:
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeUnauthorized, "tenant disabled")
	case !now.Before(r.expires):
		return kaiwa.Identity{}, kaiwa.Errorf(kaiwa.CodeTokenExpired, "token expired")
	}
	id := kaiwa.Identity{Tenant: tenant, User: r.user, Name: r.name, ExpiresAt: r.expires}
	if err := json.Unmarshal([]byte(r.join), &id.Join); err != nil {
		return kaiwa.Identity{}, fmt.Errorf("decode join prefixes: %w", err)
	}
	if err := json.Unmarshal([]byte(r.publish), &id.Publish); err != nil {
		return kaiwa.Identity{}, fmt.Errorf("decode publish prefixes: %w", err)
	}
	return id, nil
}

// RevokeTokens revokes every live token of a user of the tenant and returns
// how many it revoked (0 when the user has none).
func (s *Store) RevokeTokens(ctx context.Context, tenant kaiwa.TenantID, user string) (int, error) {
	if err := checkTenant(tenant); err != nil {
		return 0, err
	}
	if err := kaiwa.CheckID("user", user); err != nil {
		return 0, err
	}
	now := s.clock()
	res, err := s.db.ExecContext(ctx, `
		UPDATE user_tokens SET revoked_at = ?
		WHERE tenant_id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?`,
		now, tenant, user, now)
	if err != nil {
		return 0, dbError("revoke tokens", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError("revoke tokens", err)
	}
	return int(n), nil
}
