package tenants

import (
	"context"
	"database/sql"
	"time"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

// checkSanctionRef validates the tenant, user and kind of a sanction.
func checkSanctionRef(tenant kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if err := kaiwa.CheckID("user", user); err != nil {
		return err
	}
	if kind != kaiwa.SanctionBan && kind != kaiwa.SanctionMute {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "sanction must be %q or %q", kaiwa.SanctionBan, kaiwa.SanctionMute)
	}
	return nil
}

// nullTime stores a zero time as NULL, others in UTC at the schema's
// millisecond precision.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Millisecond)
}

// PutSanction records a user's ban or mute, replacing the user's earlier
// one of the same kind. A zero s.Until lasts until lifted; a zero
// s.CreatedAt is now. Times are kept at millisecond precision.
// [kaiwa.CodeBadRequest] for an invalid user, kind or reason (at most
// [kaiwa.MaxReasonLen] characters), [kaiwa.CodeNotFound] for an unknown
// tenant. The store does not refuse an s.Until in the past (such a
// sanction is simply not in force); [kaiwa.Moderator] does.
func (s *Store) PutSanction(ctx context.Context, sn kaiwa.Sanction) error {
	if err := checkSanctionRef(sn.Tenant, sn.User, sn.Kind); err != nil {
		return err
	}
	if !utf8.ValidString(sn.Reason) || utf8.RuneCountInString(sn.Reason) > kaiwa.MaxReasonLen {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "reason must be valid UTF-8 of at most %d characters", kaiwa.MaxReasonLen)
	}
	created := sn.CreatedAt
	if created.IsZero() {
		created = s.clock()
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO sanctions (tenant_id, user_id, kind, expires_at, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at), reason = VALUES(reason), created_at = VALUES(created_at)`,
		sn.Tenant, sn.User, string(sn.Kind), nullTime(sn.Until), sn.Reason, nullTime(created))
	if mysqlErrno(err) == errNoReferencedRow {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", sn.Tenant)
	}
	if err != nil {
		return dbError("put sanction", err)
	}
	return nil
}

// DeleteSanction lifts a user's ban or mute: [kaiwa.CodeNotFound] when the
// user has none in force.
func (s *Store) DeleteSanction(ctx context.Context, tenant kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	if err := checkSanctionRef(tenant, user, kind); err != nil {
		return err
	}
	// An expired row is left to Purge: it is not in force, so there is
	// nothing to lift.
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM sanctions WHERE tenant_id = ? AND user_id = ? AND kind = ?
		AND (expires_at IS NULL OR expires_at > ?)`,
		tenant, user, string(kind), s.clock())
	if err != nil {
		return dbError("delete sanction", err)
	}
	if n, err := affected(res, "delete sanction"); err != nil {
		return err
	} else if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "%s has no %s in force", user, kind)
	}
	return nil
}

// Sanctions returns the user's sanctions in force now (until lifted, or
// until a time still ahead), bans before mutes; none for an unknown
// tenant or user.
func (s *Store) Sanctions(ctx context.Context, tenant kaiwa.TenantID, user string) ([]kaiwa.Sanction, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if err := kaiwa.CheckID("user", user); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT kind, expires_at, reason, created_at FROM sanctions
		WHERE tenant_id = ? AND user_id = ? AND (expires_at IS NULL OR expires_at > ?)
		ORDER BY kind`, tenant, user, s.clock())
	if err != nil {
		return nil, dbError("read sanctions", err)
	}
	defer rows.Close()
	out := []kaiwa.Sanction{}
	for rows.Next() {
		sn := kaiwa.Sanction{Tenant: tenant, User: user}
		var until sql.NullTime
		if err := rows.Scan(&sn.Kind, &until, &sn.Reason, &sn.CreatedAt); err != nil {
			return nil, dbError("read sanctions", err)
		}
		sn.Until = until.Time
		out = append(out, sn)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("read sanctions", err)
	}
	return out, nil
}
