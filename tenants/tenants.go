package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

// MaxTenantNameLen is the longest tenant display name, in characters.
const MaxTenantNameLen = 200

// CreateTenant makes tenant id, named name (the id when empty), with one API
// key, returned once. [kaiwa.CodeConflict] when the id is taken.
func (s *Store) CreateTenant(ctx context.Context, id kaiwa.TenantID, name string) (string, error) {
	if err := checkTenant(id); err != nil {
		return "", err
	}
	if name == "" {
		name = string(id)
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxTenantNameLen {
		return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "tenant name must be valid UTF-8 of at most %d characters", MaxTenantNameLen)
	}
	now := s.clock()
	key := kaiwa.NewCredential(id)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", dbError("create tenant", err)
	}
	defer rollback(tx)
	_, err = tx.ExecContext(ctx,
		"INSERT INTO tenants (id, name, disabled, settings, created_at) VALUES (?, ?, FALSE, '{}', ?)",
		id, name, now)
	if mysqlErrno(err) == errDupEntry {
		return "", kaiwa.Errorf(kaiwa.CodeConflict, "tenant %s already exists", id)
	}
	if err != nil {
		return "", dbError("create tenant", err)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO api_keys (tenant_id, key_hash, created_at) VALUES (?, ?, ?)",
		id, kaiwa.HashCredential(key), now); err != nil {
		return "", dbError("create tenant key", err)
	}
	if err := tx.Commit(); err != nil {
		return "", dbError("create tenant", err)
	}
	return key, nil
}

// Tenants lists every tenant in id order, with their settings as stored
// (unset fields zero).
func (s *Store) Tenants(ctx context.Context) ([]kaiwa.Tenant, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, name, disabled, settings, created_at FROM tenants ORDER BY id")
	if err != nil {
		return nil, dbError("list tenants", err)
	}
	defer rows.Close()
	out := []kaiwa.Tenant{}
	for rows.Next() {
		var t kaiwa.Tenant
		var settings string
		if err := rows.Scan(&t.ID, &t.Name, &t.Disabled, &settings, &t.CreatedAt); err != nil {
			return nil, dbError("list tenants", err)
		}
		if t.Settings, err = decodeSettings(t.ID, settings); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list tenants", err)
	}
	return out, nil
}

// RotateKey adds an API key to the tenant and returns it once; existing
// keys stay valid until [Store.RevokeKey].
func (s *Store) RotateKey(ctx context.Context, id kaiwa.TenantID) (string, error) {
	if err := checkTenant(id); err != nil {
		return "", err
	}
	key := kaiwa.NewCredential(id)
	_, err := s.db.ExecContext(ctx,
		"INSERT INTO api_keys (tenant_id, key_hash, created_at) VALUES (?, ?, ?)",
		id, kaiwa.HashCredential(key), s.clock())
	if mysqlErrno(err) == errNoReferencedRow {
		return "", kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", id)
	}
	if err != nil {
		return "", dbError("add api key", err)
	}
	return key, nil
}

// APIKeys lists the tenant's API keys, oldest first, revoked ones included
// (never the keys themselves); [kaiwa.CodeNotFound] for an unknown tenant.
func (s *Store) APIKeys(ctx context.Context, id kaiwa.TenantID) ([]kaiwa.APIKey, error) {
	if err := checkTenant(id); err != nil {
		return nil, err
	}
	if err := s.tenantExists(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, created_at, last_used_at, revoked_at FROM api_keys WHERE tenant_id = ? ORDER BY id", id)
	if err != nil {
		return nil, dbError("list api keys", err)
	}
	defer rows.Close()
	out := []kaiwa.APIKey{}
	for rows.Next() {
		var k kaiwa.APIKey
		var used, revoked sql.NullTime
		if err := rows.Scan(&k.ID, &k.CreatedAt, &used, &revoked); err != nil {
			return nil, dbError("list api keys", err)
		}
		k.LastUsedAt, k.RevokedAt = used.Time, revoked.Time
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list api keys", err)
	}
	return out, nil
}

// RevokeKey revokes the tenant's API key keyID (see [Store.APIKeys]):
// [kaiwa.CodeNotFound] when the tenant has no such unrevoked key,
// [kaiwa.CodeConflict] when it is the tenant's last active key (rotate
// first: a tenant always keeps a way in).
func (s *Store) RevokeKey(ctx context.Context, id kaiwa.TenantID, keyID int64) error {
	if err := checkTenant(id); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("revoke api key", err)
	}
	defer rollback(tx)
	// The tenant's row lock serialises revocations, so that two of them
	// cannot each leave the other's key as the last one and revoke both.
	if _, err := lockTenant(ctx, tx, id); err != nil {
		return err
	}
	var target, active int
	err = tx.QueryRowContext(ctx, `
		SELECT COALESCE(SUM(id = ?), 0), COUNT(*) FROM api_keys
		WHERE tenant_id = ? AND revoked_at IS NULL`, keyID, id).Scan(&target, &active)
	if err != nil {
		return dbError("revoke api key", err)
	}
	switch {
	case target == 0:
		return kaiwa.Errorf(kaiwa.CodeNotFound, "tenant %s has no active api key %d", id, keyID)
	case active == 1:
		return kaiwa.Errorf(kaiwa.CodeConflict, "api key %d is the tenant's last active key; rotate before revoking it", keyID)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND id = ?", s.clock(), id, keyID); err != nil {
		return dbError("revoke api key", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError("revoke api key", err)
	}
	return nil
}

// lockTenant locks the tenant's row until tx ends and returns its stored
// settings (unset fields zero); [kaiwa.CodeNotFound] for an unknown tenant.
func lockTenant(ctx context.Context, tx *sql.Tx, id kaiwa.TenantID) (kaiwa.Settings, error) {
	var raw string
	err := tx.QueryRowContext(ctx, "SELECT settings FROM tenants WHERE id = ? FOR UPDATE", id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return kaiwa.Settings{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", id)
	}
	if err != nil {
		return kaiwa.Settings{}, dbError("lock tenant", err)
	}
	return decodeSettings(id, raw)
}

// decodeSettings decodes a tenant's stored settings.
func decodeSettings(id kaiwa.TenantID, raw string) (kaiwa.Settings, error) {
	var st kaiwa.Settings
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return kaiwa.Settings{}, fmt.Errorf("decode settings of tenant %s: %w", id, err)
	}
	return st, nil
}

// encodeSettings validates settings and encodes them for storage.
func encodeSettings(st kaiwa.Settings) (string, error) {
	if err := st.Check(); err != nil {
		return "", err
	}
	for _, f := range []float64{st.RateOps, st.APIRate} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "rates must be finite numbers")
		}
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("encode settings: %w", err)
	}
	return string(raw), nil
}

// DisableTenant refuses the tenant's API keys and user tokens from now on.
func (s *Store) DisableTenant(ctx context.Context, id kaiwa.TenantID) error {
	return s.setDisabled(ctx, id, true)
}

// EnableTenant lifts [Store.DisableTenant].
func (s *Store) EnableTenant(ctx context.Context, id kaiwa.TenantID) error {
	return s.setDisabled(ctx, id, false)
}

func (s *Store) setDisabled(ctx context.Context, id kaiwa.TenantID, disabled bool) error {
	if err := checkTenant(id); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, "UPDATE tenants SET disabled = ? WHERE id = ?", disabled, id)
	if err != nil {
		return dbError("set tenant disabled", err)
	}
	return s.affectedOrExists(ctx, res, id)
}

// affectedOrExists turns an UPDATE of a tenant's row that changed nothing
// into not_found when the tenant does not exist (an UPDATE that sets a row
// to its current values affects no rows).
func (s *Store) affectedOrExists(ctx context.Context, res sql.Result, id kaiwa.TenantID) error {
	n, err := res.RowsAffected()
	if err != nil {
		return dbError("update tenant", err)
	}
	if n > 0 {
		return nil
	}
	return s.tenantExists(ctx, id)
}

// tenantExists returns nil when the tenant exists, else not_found.
func (s *Store) tenantExists(ctx context.Context, id kaiwa.TenantID) error {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM tenants WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", id)
	}
	if err != nil {
		return dbError("find tenant", err)
	}
	return nil
}

// AuthenticateKey returns the tenant an API key belongs to:
// [kaiwa.CodeUnauthorized] when the key is malformed, unknown or revoked, or
// its tenant disabled. It records when the key was last used, writing at most
// once per [Store.KeyTouchInterval].
func (s *Store) AuthenticateKey(ctx context.Context, apiKey string) (kaiwa.TenantID, error) {
	t, _, err := s.AuthenticateKeyID(ctx, apiKey)
	return t, err
}

// AuthenticateKeyID is [Store.AuthenticateKey] that also returns the key's
// id, which the console names its operator by.
func (s *Store) AuthenticateKeyID(ctx context.Context, apiKey string) (kaiwa.TenantID, int64, error) {
	tenant, ok := kaiwa.CredentialTenant(apiKey)
	if !ok {
		return "", 0, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid api key")
	}
	var (
		id       int64
		used     sql.NullTime
		revoked  sql.NullTime
		disabled bool
	)
	err := s.db.QueryRowContext(ctx, `
		SELECT k.id, k.last_used_at, k.revoked_at, t.disabled
		FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
		WHERE k.tenant_id = ? AND k.key_hash = ?`,
		tenant, kaiwa.HashCredential(apiKey)).Scan(&id, &used, &revoked, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid api key")
	}
	if err != nil {
		return "", 0, dbError("authenticate api key", err)
	}
	if revoked.Valid {
		return "", 0, kaiwa.Errorf(kaiwa.CodeUnauthorized, "api key revoked")
	}
	if disabled {
		return "", 0, kaiwa.Errorf(kaiwa.CodeUnauthorized, "tenant disabled")
	}
	now := s.clock()
	if stale := now.Add(-s.KeyTouchInterval); !used.Valid || used.Time.Before(stale) {
		// The condition repeats the check so that concurrent callers write once.
		if _, err := s.db.ExecContext(ctx,
			"UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
			now, id, stale); err != nil {
			return "", 0, dbError("record api key use", err)
		}
	}
	return tenant, id, nil
}

// KeyActive returns nil when key keyID of tenant id is active and the
// tenant enabled, else a [kaiwa.CodeUnauthorized] error.
func (s *Store) KeyActive(ctx context.Context, id kaiwa.TenantID, keyID int64) error {
	var n int
	err := s.db.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
		WHERE k.tenant_id = ? AND k.id = ? AND k.revoked_at IS NULL AND NOT t.disabled`,
		id, keyID).Scan(&n)
	if err != nil {
		return dbError("check api key", err)
	}
	if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "api key revoked or tenant disabled")
	}
	return nil
}

// TenantSettings returns the tenant's settings with defaults applied;
// [kaiwa.CodeNotFound] for an unknown tenant.
func (s *Store) TenantSettings(ctx context.Context, id kaiwa.TenantID) (kaiwa.Settings, error) {
	if err := checkTenant(id); err != nil {
		return kaiwa.Settings{}, err
	}
	var raw string
	err := s.db.QueryRowContext(ctx, "SELECT settings FROM tenants WHERE id = ?", id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return kaiwa.Settings{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", id)
	}
	if err != nil {
		return kaiwa.Settings{}, dbError("read tenant settings", err)
	}
	st, err := decodeSettings(id, raw)
	if err != nil {
		return kaiwa.Settings{}, err
	}
	return st.WithDefaults(), nil
}

// SetTenantSettings replaces the tenant's settings, the NG policy
// included; zero fields mean "use the default". Settings that fail
// [kaiwa.Settings.Check] (or rates that are not finite numbers) are refused
// with [kaiwa.CodeBadRequest].
func (s *Store) SetTenantSettings(ctx context.Context, id kaiwa.TenantID, st kaiwa.Settings) error {
	if err := checkTenant(id); err != nil {
		return err
	}
	raw, err := encodeSettings(st)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, "UPDATE tenants SET settings = ? WHERE id = ?", raw, id)
	if err != nil {
		return dbError("write tenant settings", err)
	}
	return s.affectedOrExists(ctx, res, id)
}
