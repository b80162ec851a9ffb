package tenants

import (
	"context"
	"database/sql"
	"errors"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

// MaxTitleLen is the longest channel title, in characters.
const MaxTitleLen = 200

// checkChannelRef validates the tenant and channel arguments of a lookup.
func checkChannelRef(tenant kaiwa.TenantID, ch string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	return kaiwa.CheckChannel(ch)
}

// dmChannel returns the synthetic channel of a direct channel name.
func dmChannel(tenant kaiwa.TenantID, ch string) kaiwa.Channel {
	return kaiwa.Channel{Tenant: tenant, Name: ch, Kind: kaiwa.ChannelClosed}
}

func errDirect(what string) error {
	return kaiwa.Errorf(kaiwa.CodeBadRequest, "direct channels exist implicitly; they cannot be %s", what)
}

// PutChannel creates or updates a channel (kind "open" when empty); created
// reports which. Direct channels ("dm:...") cannot be created:
// [kaiwa.CodeBadRequest]. [kaiwa.CodeNotFound] for an unknown tenant.
func (s *Store) PutChannel(ctx context.Context, ch kaiwa.Channel) (bool, error) {
	if err := checkChannelRef(ch.Tenant, ch.Name); err != nil {
		return false, err
	}
	if kaiwa.IsDM(ch.Name) {
		return false, errDirect("created")
	}
	switch ch.Kind {
	case "":
		ch.Kind = kaiwa.ChannelOpen
	case kaiwa.ChannelOpen, kaiwa.ChannelClosed:
	default:
		return false, kaiwa.Errorf(kaiwa.CodeBadRequest, "channel kind must be %q or %q", kaiwa.ChannelOpen, kaiwa.ChannelClosed)
	}
	if !utf8.ValidString(ch.Title) || utf8.RuneCountInString(ch.Title) > MaxTitleLen {
		return false, kaiwa.Errorf(kaiwa.CodeBadRequest, "title must be valid UTF-8 of at most %d characters", MaxTitleLen)
	}
	// Affected rows: 1 when inserted, 2 when updated, 0 when unchanged.
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO channels (tenant_id, name, kind, title, created_at) VALUES (?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE kind = VALUES(kind), title = VALUES(title)`,
		ch.Tenant, ch.Name, string(ch.Kind), ch.Title, s.clock())
	if mysqlErrno(err) == errNoReferencedRow {
		return false, kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", ch.Tenant)
	}
	if err != nil {
		return false, dbError("put channel", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbError("put channel", err)
	}
	return n == 1, nil
}

// DeleteChannel removes a channel and its membership in one transaction;
// [kaiwa.CodeNotFound] if absent, [kaiwa.CodeBadRequest] for a direct
// channel.
func (s *Store) DeleteChannel(ctx context.Context, tenant kaiwa.TenantID, ch string) error {
	if err := checkChannelRef(tenant, ch); err != nil {
		return err
	}
	if kaiwa.IsDM(ch) {
		return errDirect("deleted")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("delete channel", err)
	}
	defer rollback(tx)
	if _, err := tx.ExecContext(ctx, "DELETE FROM members WHERE tenant_id = ? AND channel = ?", tenant, ch); err != nil {
		return dbError("delete channel members", err)
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM channels WHERE tenant_id = ? AND name = ?", tenant, ch)
	if err != nil {
		return dbError("delete channel", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError("delete channel", err)
	} else if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no channel %s", ch)
	}
	if err := tx.Commit(); err != nil {
		return dbError("delete channel", err)
	}
	return nil
}

// Channel returns a channel, or [kaiwa.CodeNotFound]. A well-formed direct
// channel name always exists: it returns a closed channel with no title.
func (s *Store) Channel(ctx context.Context, tenant kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return kaiwa.Channel{}, err
	}
	if kaiwa.IsDM(ch) {
		return dmChannel(tenant, ch), nil
	}
	c := kaiwa.Channel{Tenant: tenant, Name: ch}
	err := s.db.QueryRowContext(ctx,
		"SELECT kind, title, created_at FROM channels WHERE tenant_id = ? AND name = ?", tenant, ch).
		Scan(&c.Kind, &c.Title, &c.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return kaiwa.Channel{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no channel %s", ch)
	}
	if err != nil {
		return kaiwa.Channel{}, dbError("read channel", err)
	}
	return c, nil
}

// AddMember makes user a persistent member of ch; added is false when it
// already was. [kaiwa.CodeNotFound] when ch does not exist,
// [kaiwa.CodeBadRequest] for a direct channel (its members are fixed).
func (s *Store) AddMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	if err := checkMemberRef(tenant, ch, user); err != nil {
		return false, err
	}
	if kaiwa.IsDM(ch) {
		return false, errDirect("given members")
	}
	// The foreign key to channels makes a missing channel an error, even
	// when it is deleted concurrently.
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO members (tenant_id, channel, user_id, created_at) VALUES (?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE user_id = user_id`,
		tenant, ch, user, s.clock())
	if mysqlErrno(err) == errNoReferencedRow {
		return false, kaiwa.Errorf(kaiwa.CodeNotFound, "no channel %s", ch)
	}
	if err != nil {
		return false, dbError("add member", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbError("add member", err)
	}
	return n == 1, nil
}

// RemoveMember removes user from ch ([kaiwa.CodeNotFound] if not a member).
func (s *Store) RemoveMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) error {
	if err := checkMemberRef(tenant, ch, user); err != nil {
		return err
	}
	if kaiwa.IsDM(ch) {
		return errDirect("given members")
	}
	res, err := s.db.ExecContext(ctx,
		"DELETE FROM members WHERE tenant_id = ? AND channel = ? AND user_id = ?", tenant, ch, user)
	if err != nil {
		return dbError("remove member", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError("remove member", err)
	} else if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "%s is not a member of %s", user, ch)
	}
	return nil
}

// Members lists a channel's members in id order ([kaiwa.CodeNotFound] if
// ch does not exist). A direct channel's members are its two users.
func (s *Store) Members(ctx context.Context, tenant kaiwa.TenantID, ch string) ([]string, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return nil, err
	}
	if a, b, ok := kaiwa.ParseDM(ch); ok {
		return []string{a, b}, nil
	}
	// One round trip: the channel row with its members, or with one NULL
	// member when it has none, or no row at all when it does not exist.
	rows, err := s.db.QueryContext(ctx, `
		SELECT m.user_id FROM channels c
		LEFT JOIN members m ON m.tenant_id = c.tenant_id AND m.channel = c.name
		WHERE c.tenant_id = ? AND c.name = ?
		ORDER BY m.user_id`, tenant, ch)
	if err != nil {
		return nil, dbError("list members", err)
	}
	defer rows.Close()
	found := false
	out := []string{}
	for rows.Next() {
		found = true
		var u sql.NullString
		if err := rows.Scan(&u); err != nil {
			return nil, dbError("list members", err)
		}
		if u.Valid {
			out = append(out, u.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list members", err)
	}
	if !found {
		return nil, kaiwa.Errorf(kaiwa.CodeNotFound, "no channel %s", ch)
	}
	return out, nil
}

// IsMember reports whether user is a persistent member of ch; for a direct
// channel, whether user is one of its two users. A channel that does not
// exist has no members.
func (s *Store) IsMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	if err := checkMemberRef(tenant, ch, user); err != nil {
		return false, err
	}
	if a, b, ok := kaiwa.ParseDM(ch); ok {
		return user == a || user == b, nil
	}
	var one int
	err := s.db.QueryRowContext(ctx,
		"SELECT 1 FROM members WHERE tenant_id = ? AND channel = ? AND user_id = ?", tenant, ch, user).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbError("check member", err)
	}
	return true, nil
}

// MemberChannels lists, in name order, the channels user is a persistent
// member of (direct channels are not listed: they need no membership).
func (s *Store) MemberChannels(ctx context.Context, tenant kaiwa.TenantID, user string) ([]string, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if err := kaiwa.CheckID("user", user); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT channel FROM members WHERE tenant_id = ? AND user_id = ? ORDER BY channel", tenant, user)
	if err != nil {
		return nil, dbError("list member channels", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var ch string
		if err := rows.Scan(&ch); err != nil {
			return nil, dbError("list member channels", err)
		}
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list member channels", err)
	}
	return out, nil
}

func checkMemberRef(tenant kaiwa.TenantID, ch, user string) error {
	if err := checkChannelRef(tenant, ch); err != nil {
		return err
	}
	return kaiwa.CheckID("user", user)
}
