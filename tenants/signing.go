package tenants

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

var _ kaiwa.SigningStore = (*Store)(nil)

// PutSigningKey adds a signing key of k.Tenant ([kaiwa.CodeConflict] when
// its kid is taken or the tenant has [kaiwa.MaxSigningKeys] already,
// [kaiwa.CodeNotFound] for an unknown tenant). The count is checked in
// the insert's own transaction, under a lock on the tenant's keys.
func (s *Store) PutSigningKey(ctx context.Context, k kaiwa.SigningKey) error {
	if err := checkTenant(k.Tenant); err != nil {
		return err
	}
	if err := k.Check(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("add signing key", err)
	}
	defer rollback(tx)
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM signing_keys WHERE tenant_id = ? FOR UPDATE", k.Tenant).Scan(&n); err != nil {
		return dbError("add signing key", err)
	}
	if n >= kaiwa.MaxSigningKeys {
		return kaiwa.Errorf(kaiwa.CodeConflict, "a tenant has at most %d signing keys: delete one first", kaiwa.MaxSigningKeys)
	}
	var secret, pub any
	if len(k.Secret) > 0 {
		secret = k.Secret
	}
	if k.PublicKey != "" {
		pub = k.PublicKey
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = s.clock()
	}
	_, err = tx.ExecContext(ctx,
		"INSERT INTO signing_keys (tenant_id, kid, alg, secret, public_key, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		k.Tenant, k.Kid, k.Alg, secret, pub, nullTime(created))
	switch mysqlErrno(err) {
	case errDupEntry:
		return kaiwa.Errorf(kaiwa.CodeConflict, "signing key %s already exists", k.Kid)
	case errNoReferencedRow:
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", k.Tenant)
	}
	if err != nil {
		return dbError("add signing key", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError("add signing key", err)
	}
	return nil
}

// SigningKeys lists the tenant's signing keys by kid, secrets included.
func (s *Store) SigningKeys(ctx context.Context, t kaiwa.TenantID) ([]kaiwa.SigningKey, error) {
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT kid, alg, secret, public_key, created_at FROM signing_keys WHERE tenant_id = ? ORDER BY kid", t)
	if err != nil {
		return nil, dbError("list signing keys", err)
	}
	defer rows.Close()
	out := []kaiwa.SigningKey{}
	for rows.Next() {
		k := kaiwa.SigningKey{Tenant: t}
		var pub sql.NullString
		if err := rows.Scan(&k.Kid, &k.Alg, &k.Secret, &pub, &k.CreatedAt); err != nil {
			return nil, dbError("list signing keys", err)
		}
		k.PublicKey = pub.String
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list signing keys", err)
	}
	return out, nil
}

// DeleteSigningKey removes a signing key ([kaiwa.CodeNotFound] if the
// tenant has none of that kid).
func (s *Store) DeleteSigningKey(ctx context.Context, t kaiwa.TenantID, kid string) error {
	if err := checkTenant(t); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, "DELETE FROM signing_keys WHERE tenant_id = ? AND kid = ?", t, kid)
	if err != nil {
		return dbError("delete signing key", err)
	}
	if n, err := affected(res, "delete signing key"); err != nil {
		return err
	} else if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no signing key %s", kid)
	}
	return nil
}

// RevokeTokenID revokes a signed token id until r.Until (a later
// revocation of the same id extends it).
func (s *Store) RevokeTokenID(ctx context.Context, t kaiwa.TenantID, r kaiwa.RevokedTokenID) error {
	if err := checkTenant(t); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO revoked_token_ids (tenant_id, jti, expires_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))`,
		t, r.ID, nullTime(r.Until))
	if mysqlErrno(err) == errNoReferencedRow {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", t)
	}
	if err != nil {
		return dbError("revoke token id", err)
	}
	return nil
}

// RevokeUserTokens refuses the user's signed tokens issued before r.Since
// (a later revocation moves the time forward).
func (s *Store) RevokeUserTokens(ctx context.Context, t kaiwa.TenantID, r kaiwa.UserRevocation) error {
	if err := checkTenant(t); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO user_revocations (tenant_id, user_id, revoked_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE revoked_at = GREATEST(revoked_at, VALUES(revoked_at))`,
		t, r.User, nullTime(r.Since))
	if mysqlErrno(err) == errNoReferencedRow {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", t)
	}
	if err != nil {
		return dbError("revoke user tokens", err)
	}
	return nil
}

// SigningState returns the tenant's keys, the revocations still in force
// (a user revocation lasts as long as a token may), and its sanctions in
// force, up to [kaiwa.MaxStateSanctions] (Partial when there are more).
func (s *Store) SigningState(ctx context.Context, t kaiwa.TenantID) (kaiwa.SigningState, error) {
	var st kaiwa.SigningState
	var disabled bool
	err := s.db.QueryRowContext(ctx, "SELECT disabled FROM tenants WHERE id = ?", t).Scan(&disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return st, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
	}
	if err != nil {
		return st, dbError("read tenant", err)
	}
	if st.Keys, err = s.SigningKeys(ctx, t); err != nil {
		return st, err
	}
	if disabled {
		st.Keys = nil // a disabled tenant's tokens are refused
	}
	now := s.clock()
	rows, err := s.db.QueryContext(ctx,
		"SELECT jti, expires_at FROM revoked_token_ids WHERE tenant_id = ? AND expires_at > ?", t, now)
	if err != nil {
		return st, dbError("read revocations", err)
	}
	for rows.Next() {
		var r kaiwa.RevokedTokenID
		if err := rows.Scan(&r.ID, &r.Until); err != nil {
			rows.Close()
			return st, dbError("read revocations", err)
		}
		st.Revoked = append(st.Revoked, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, dbError("read revocations", err)
	}
	oldest := now.Add(-kaiwa.MaxTokenTTL - kaiwa.ClockSkew)
	rows, err = s.db.QueryContext(ctx,
		"SELECT user_id, revoked_at FROM user_revocations WHERE tenant_id = ? AND revoked_at > ?", t, oldest)
	if err != nil {
		return st, dbError("read revocations", err)
	}
	for rows.Next() {
		var r kaiwa.UserRevocation
		if err := rows.Scan(&r.User, &r.Since); err != nil {
			rows.Close()
			return st, dbError("read revocations", err)
		}
		st.Users = append(st.Users, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, dbError("read revocations", err)
	}
	rows, err = s.db.QueryContext(ctx, `
		SELECT user_id, kind, expires_at, reason, created_at FROM sanctions
		WHERE tenant_id = ? AND (expires_at IS NULL OR expires_at > ?) LIMIT ?`,
		t, now, kaiwa.MaxStateSanctions+1)
	if err != nil {
		return st, dbError("read sanctions", err)
	}
	defer rows.Close()
	for rows.Next() {
		sn := kaiwa.Sanction{Tenant: t}
		var until sql.NullTime
		if err := rows.Scan(&sn.User, &sn.Kind, &until, &sn.Reason, &sn.CreatedAt); err != nil {
			return st, dbError("read sanctions", err)
		}
		sn.Until = until.Time
		st.Sanctions = append(st.Sanctions, sn)
	}
	if err := rows.Err(); err != nil {
		return st, dbError("read sanctions", err)
	}
	if len(st.Sanctions) > kaiwa.MaxStateSanctions {
		st.Sanctions, st.Partial = st.Sanctions[:kaiwa.MaxStateSanctions], true
	}
	return st, nil
}

// SigningState forwards to the cached directory's store when it keeps
// signing state (never cached: a UA asks once per tenant and then follows
// live changes).
func (c *Cache) SigningState(ctx context.Context, t kaiwa.TenantID) (kaiwa.SigningState, error) {
	ss, ok := c.d.(interface {
		SigningState(context.Context, kaiwa.TenantID) (kaiwa.SigningState, error)
	})
	if !ok {
		return kaiwa.SigningState{}, kaiwa.Errorf(kaiwa.CodeUnavailable, "signed tokens are not served here")
	}
	return ss.SigningState(ctx, t)
}

// purgeRevocations deletes revocations no token can need any more.
func (s *Store) purgeRevocations(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM revoked_token_ids WHERE expires_at <= ? LIMIT 10000", now); err != nil {
		return dbError("purge revocations", err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM user_revocations WHERE revoked_at <= ? LIMIT 10000",
		now.Add(-kaiwa.MaxTokenTTL-kaiwa.ClockSkew)); err != nil {
		return dbError("purge revocations", err)
	}
	return nil
}
