package tenants

import (
	"context"
	"database/sql"

	"github.com/kaiwa-chat/kaiwa"
)

var _ kaiwa.SessionResolver = (*Store)(nil)

// ResolveSessions implements [kaiwa.SessionResolver]: one query for all the
// tokens, then one for the sanctions and one for the memberships of each
// tenant's users. Each token gets what [Store.ResolveToken],
// [Store.Sanctions] and [Store.MemberChannels] would give it.
func (s *Store) ResolveSessions(ctx context.Context, tokens []string) []kaiwa.SessionInfo {
	out := make([]kaiwa.SessionInfo, len(tokens))
	byHash := make(map[string][]int, len(tokens))
	for i, tok := range tokens {
		if _, ok := kaiwa.CredentialTenant(tok); !ok {
			out[i].Err = kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
			continue
		}
		h := kaiwa.HashCredential(tok)
		byHash[h] = append(byHash[h], i)
	}
	if len(byHash) == 0 {
		return out
	}
	// fail gives err to every token not already refused: none can be
	// answered in full.
	fail := func(err error) []kaiwa.SessionInfo {
		for i := range out {
			if out[i].Err == nil {
				out[i] = kaiwa.SessionInfo{Err: err}
			}
		}
		return out
	}

	// The tokens.
	hashes := make([]any, 0, len(byHash))
	for h := range byHash {
		hashes = append(hashes, h)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT u.token_hash, u.tenant_id, u.user_id, u.name, u.join_prefixes, u.publish_prefixes, u.expires_at, u.revoked_at, t.disabled
		FROM user_tokens u JOIN tenants t ON t.id = u.tenant_id
		WHERE u.token_hash IN (`+placeholders(len(hashes))+`)`, hashes...)
	if err != nil {
		return fail(dbError("resolve tokens", err))
	}
	now := s.clock()
	found := make(map[string]bool, len(byHash))
	users := map[kaiwa.TenantID]map[string]bool{} // the users whose tokens are good
	for rows.Next() {
		var (
			hash   string
			tenant kaiwa.TenantID
			row    tokenRow
		)
		if err := rows.Scan(&hash, &tenant, &row.user, &row.name, &row.join, &row.publish, &row.expires, &row.revoked, &row.disabled); err != nil {
			rows.Close()
			return fail(dbError("resolve tokens", err))
		}
		found[hash] = true
		id, err := row.identity(tenant, now)
		for _, i := range byHash[hash] {
			if t, _ := kaiwa.CredentialTenant(tokens[i]); t != tenant {
				out[i].Err = kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
				continue
			}
			out[i].Identity, out[i].Err = id, err
			if err == nil {
				if users[tenant] == nil {
					users[tenant] = map[string]bool{}
				}
				users[tenant][id.User] = true
			}
		}
	}
	if err := rows.Close(); err != nil {
		return fail(dbError("resolve tokens", err))
	}
	if err := rows.Err(); err != nil {
		return fail(dbError("resolve tokens", err))
	}
	for h, is := range byHash {
		if !found[h] {
			for _, i := range is {
				out[i].Err = kaiwa.Errorf(kaiwa.CodeUnauthorized, "invalid token")
			}
		}
	}

	// Each tenant's users' sanctions and memberships.
	for tenant, set := range users {
		list := make([]any, 0, len(set)+2)
		list = append(list, tenant)
		for u := range set {
			list = append(list, u)
		}
		sanctions, err := s.usersSanctions(ctx, tenant, list, now)
		if err != nil {
			return fail(err)
		}
		channels, err := s.usersChannels(ctx, list)
		if err != nil {
			return fail(err)
		}
		for i := range out {
			if out[i].Err != nil || out[i].Identity.Tenant != tenant {
				continue
			}
			u := out[i].Identity.User
			out[i].Sanctions = append([]kaiwa.Sanction{}, sanctions[u]...)
			out[i].Channels = append([]string{}, channels[u]...)
		}
	}
	return out
}

// usersSanctions returns the sanctions in force at now of the users in
// args (the tenant, then the user ids), by user, each user's in kind order.
func (s *Store) usersSanctions(ctx context.Context, tenant kaiwa.TenantID, args []any, now any) (map[string][]kaiwa.Sanction, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT user_id, kind, expires_at, reason, created_at FROM sanctions
		WHERE tenant_id = ? AND user_id IN (`+placeholders(len(args)-1)+`) AND (expires_at IS NULL OR expires_at > ?)
		ORDER BY user_id, kind`, append(args, now)...)
	if err != nil {
		return nil, dbError("read sanctions", err)
	}
	defer rows.Close()
	out := map[string][]kaiwa.Sanction{}
	for rows.Next() {
		sn := kaiwa.Sanction{Tenant: tenant}
		var until sql.NullTime
		if err := rows.Scan(&sn.User, &sn.Kind, &until, &sn.Reason, &sn.CreatedAt); err != nil {
			return nil, dbError("read sanctions", err)
		}
		sn.Until = until.Time
		out[sn.User] = append(out[sn.User], sn)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("read sanctions", err)
	}
	return out, nil
}

// usersChannels returns the channels each user in args (the tenant, then
// the user ids) is a member of, by user, in name order.
func (s *Store) usersChannels(ctx context.Context, args []any) (map[string][]string, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT user_id, channel FROM members
		WHERE tenant_id = ? AND user_id IN (`+placeholders(len(args)-1)+`)
		ORDER BY user_id, channel`, args...)
	if err != nil {
		return nil, dbError("list member channels", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var user, ch string
		if err := rows.Scan(&user, &ch); err != nil {
			return nil, dbError("list member channels", err)
		}
		out[user] = append(out[user], ch)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list member channels", err)
	}
	return out, nil
}
