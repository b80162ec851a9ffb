package tenants

import (
	"context"
	"database/sql"
	"errors"

	"github.com/kaiwa-chat/kaiwa"
)

// checkChannelRef validates the tenant and channel arguments of a lookup.
func checkChannelRef(tenant kaiwa.TenantID, ch string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	return kaiwa.CheckChannel(ch)
}

// implicitMembers returns the fixed members of a direct channel (its two
// users) or an inbox (its user); ok is false for any other channel.
func implicitMembers(ch string) (members []string, ok bool) {
	if a, b, ok := kaiwa.ParseDM(ch); ok {
		return []string{a, b}, true
	}
	if u, ok := kaiwa.InboxUser(ch); ok {
		return []string{u}, true
	}
	return nil, false
}

// implicit reports whether ch is a direct channel or an inbox, which exist
// without being created.
func implicit(ch string) bool { return kaiwa.IsDM(ch) || kaiwa.IsInbox(ch) }

func errImplicit(what string) error {
	return kaiwa.Errorf(kaiwa.CodeBadRequest, "direct and inbox channels exist implicitly; they cannot be %s", what)
}

// PutChannel creates or updates a channel (kind "open" when empty); created
// reports which. The channel must pass [kaiwa.Channel.Check]: direct
// ("dm:...") and inbox ("@user") channels cannot be created
// ([kaiwa.CodeBadRequest]). [kaiwa.CodeNotFound] for an unknown tenant.
func (s *Store) PutChannel(ctx context.Context, ch kaiwa.Channel) (bool, error) {
	if err := checkTenant(ch.Tenant); err != nil {
		return false, err
	}
	if ch.Kind == "" {
		ch.Kind = kaiwa.ChannelOpen
	}
	if err := ch.Check(); err != nil {
		return false, err
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
	n, err := affected(res, "put channel")
	return n == 1, err
}

// lockChannel locks a channel's row until tx ends and returns its member
// count; [kaiwa.CodeNotFound] when it does not exist.
func lockChannel(ctx context.Context, tx *sql.Tx, tenant kaiwa.TenantID, ch string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx,
		"SELECT member_count FROM channels WHERE tenant_id = ? AND name = ? FOR UPDATE", tenant, ch).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, kaiwa.Errorf(kaiwa.CodeNotFound, "no channel %s", ch)
	}
	if err != nil {
		return 0, dbError("lock channel", err)
	}
	return n, nil
}

// DeleteChannel removes a channel and its membership in one transaction;
// [kaiwa.CodeNotFound] if absent, [kaiwa.CodeBadRequest] for a direct or
// inbox channel. The channel's messages stay in the log.
func (s *Store) DeleteChannel(ctx context.Context, tenant kaiwa.TenantID, ch string) error {
	if err := checkChannelRef(tenant, ch); err != nil {
		return err
	}
	if implicit(ch) {
		return errImplicit("deleted")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("delete channel", err)
	}
	defer rollback(tx)
	if _, err := lockChannel(ctx, tx, tenant, ch); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM members WHERE tenant_id = ? AND channel = ?", tenant, ch); err != nil {
		return dbError("delete channel members", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM channels WHERE tenant_id = ? AND name = ?", tenant, ch); err != nil {
		return dbError("delete channel", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError("delete channel", err)
	}
	return nil
}

// Channel returns a channel, or [kaiwa.CodeNotFound]. A well-formed direct
// channel or inbox always exists: it returns a closed channel with no
// title.
func (s *Store) Channel(ctx context.Context, tenant kaiwa.TenantID, ch string) (kaiwa.Channel, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return kaiwa.Channel{}, err
	}
	if implicit(ch) {
		return kaiwa.Channel{Tenant: tenant, Name: ch, Kind: kaiwa.ChannelClosed}, nil
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

// Channels lists the tenant's channels of the given kind ("" for all) in
// name order; an unknown tenant has none. Direct channels and inboxes are
// not listed.
func (s *Store) Channels(ctx context.Context, tenant kaiwa.TenantID, kind kaiwa.ChannelKind) ([]kaiwa.Channel, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	q, args := "SELECT name, kind, title, created_at FROM channels WHERE tenant_id = ?", []any{tenant}
	switch kind {
	case "":
	case kaiwa.ChannelOpen, kaiwa.ChannelClosed:
		q, args = q+" AND kind = ?", append(args, string(kind))
	default:
		return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "kind must be %q or %q", kaiwa.ChannelOpen, kaiwa.ChannelClosed)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY name", args...)
	if err != nil {
		return nil, dbError("list channels", err)
	}
	defer rows.Close()
	out := []kaiwa.Channel{}
	for rows.Next() {
		c := kaiwa.Channel{Tenant: tenant}
		if err := rows.Scan(&c.Name, &c.Kind, &c.Title, &c.CreatedAt); err != nil {
			return nil, dbError("list channels", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list channels", err)
	}
	return out, nil
}

// AddMember makes user a persistent member of ch; added is false when it
// already was. [kaiwa.CodeNotFound] when ch does not exist,
// [kaiwa.CodeBadRequest] for a direct channel or an inbox (their members
// are fixed), [kaiwa.CodeTooLarge] when ch already has the tenant's
// [kaiwa.Settings] MaxChannelMembers members.
func (s *Store) AddMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	if err := checkMemberRef(tenant, ch, user); err != nil {
		return false, err
	}
	if implicit(ch) {
		return false, errImplicit("given members")
	}
	settings, err := s.TenantSettings(ctx, tenant)
	if kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		return false, kaiwa.Errorf(kaiwa.CodeNotFound, "no channel %s", ch)
	}
	if err != nil {
		return false, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, dbError("add member", err)
	}
	defer rollback(tx)
	// The channel's row lock makes the count exact: concurrent additions
	// to one channel wait for each other, and a concurrent deletion
	// either happens first (not found) or waits.
	count, err := lockChannel(ctx, tx, tenant, ch)
	if err != nil {
		return false, err
	}
	var one int
	err = tx.QueryRowContext(ctx,
		"SELECT 1 FROM members WHERE tenant_id = ? AND channel = ? AND user_id = ?", tenant, ch, user).Scan(&one)
	if err == nil {
		return false, nil // already a member, even of a full channel
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, dbError("add member", err)
	}
	if limit := settings.MaxChannelMembers; count >= limit {
		return false, kaiwa.Errorf(kaiwa.CodeTooLarge, "channel %s has %d members, the limit is %d", ch, count, limit)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO members (tenant_id, channel, user_id, created_at) VALUES (?, ?, ?, ?)",
		tenant, ch, user, s.clock()); err != nil {
		return false, dbError("add member", err)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE channels SET member_count = member_count + 1 WHERE tenant_id = ? AND name = ?", tenant, ch); err != nil {
		return false, dbError("count member", err)
	}
	if err := tx.Commit(); err != nil {
		return false, dbError("add member", err)
	}
	return true, nil
}

// RemoveMember removes user from ch ([kaiwa.CodeNotFound] if not a member).
func (s *Store) RemoveMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) error {
	if err := checkMemberRef(tenant, ch, user); err != nil {
		return err
	}
	if implicit(ch) {
		return errImplicit("given members")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("remove member", err)
	}
	defer rollback(tx)
	if _, err := lockChannel(ctx, tx, tenant, ch); kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "%s is not a member of %s", user, ch)
	} else if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx,
		"DELETE FROM members WHERE tenant_id = ? AND channel = ? AND user_id = ?", tenant, ch, user)
	if err != nil {
		return dbError("remove member", err)
	}
	if n, err := affected(res, "remove member"); err != nil {
		return err
	} else if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "%s is not a member of %s", user, ch)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE channels SET member_count = GREATEST(member_count, 1) - 1 WHERE tenant_id = ? AND name = ?",
		tenant, ch); err != nil {
		return dbError("count member", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError("remove member", err)
	}
	return nil
}

// Members lists a channel's members in id order ([kaiwa.CodeNotFound] if
// ch does not exist). A direct channel's members are its two users, an
// inbox's its user.
func (s *Store) Members(ctx context.Context, tenant kaiwa.TenantID, ch string) ([]string, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return nil, err
	}
	if m, ok := implicitMembers(ch); ok {
		return m, nil
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
// channel, whether user is one of its two users; for an inbox, whether it
// is user's. A channel that does not exist has no members.
func (s *Store) IsMember(ctx context.Context, tenant kaiwa.TenantID, ch, user string) (bool, error) {
	if err := checkMemberRef(tenant, ch, user); err != nil {
		return false, err
	}
	if m, ok := implicitMembers(ch); ok {
		for _, u := range m {
			if u == user {
				return true, nil
			}
		}
		return false, nil
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
// member of (direct channels and inboxes are not listed: they need no
// membership).
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
