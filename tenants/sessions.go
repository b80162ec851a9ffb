package tenants

import (
	"context"
	"database/sql"

	"github.com/kaiwa-chat/kaiwa"
)

var _ kaiwa.SessionResolver = (*Store)(nil)

// ResolveSessions implements [kaiwa.SessionResolver]: one query for all the
// tokens, then one for the sanctions and the memberships of each tenant's
// users. Each token gets what [Store.ResolveToken],
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
	rows, err := s.db.QueryContext(ctx, tokensByHashSQL(len(hashes)), hashes...)
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
		list := make([]string, 0, len(set))
		for u := range set {
			list = append(list, u)
		}
		sanctions, channels, err := s.usersSessions(ctx, tenant, list, now)
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

// usersSessions returns the sanctions in force at now and the member
// channels of tenant's users, by user: each user's sanctions in kind
// order, their channels in name order. Both come in one query (a connect
// storm's batches are small, and each round trip costs the database more
// than the rows).
func (s *Store) usersSessions(ctx context.Context, tenant kaiwa.TenantID, users []string, now any) (map[string][]kaiwa.Sanction, map[string][]string, error) {
	in := placeholders(len(users))
	args := make([]any, 0, 2*len(users)+3)
	args = append(args, tenant)
	for _, u := range users {
		args = append(args, u)
	}
	args = append(args, now, tenant)
	for _, u := range users {
		args = append(args, u)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT 0, user_id, kind, expires_at, reason, created_at FROM sanctions
		WHERE tenant_id = ? AND user_id IN (`+in+`) AND (expires_at IS NULL OR expires_at > ?)
		UNION ALL
		SELECT 1, user_id, channel, NULL, '', NULL FROM members
		WHERE tenant_id = ? AND user_id IN (`+in+`)
		ORDER BY 1, 2, 3`, args...)
	if err != nil {
		return nil, nil, dbError("read sessions", err)
	}
	defer rows.Close()
	sanctions := map[string][]kaiwa.Sanction{}
	channels := map[string][]string{}
	for rows.Next() {
		var (
			part         int
			user, name   string
			until, since sql.NullTime
			reason       string
		)
		if err := rows.Scan(&part, &user, &name, &until, &reason, &since); err != nil {
			return nil, nil, dbError("read sessions", err)
		}
		if part == 1 {
			channels[user] = append(channels[user], name)
			continue
		}
		sanctions[user] = append(sanctions[user], kaiwa.Sanction{
			Tenant: tenant, User: user, Kind: kaiwa.SanctionKind(name), Until: until.Time, Reason: reason, CreatedAt: since.Time,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, dbError("read sessions", err)
	}
	return sanctions, channels, nil
}

// tokensByHashSQL is the query of n tokens by their hashes, with their
// tenants' state. The tokens are read first, by their unique hash:
// without STRAIGHT_JOIN the optimizer may start from the tenant and read
// every token of it through the (tenant, user) index, testing each hash
// (about 1.6 ms of MariaDB for a batch of 17 tokens among a tenant's
// 10,000, against 0.15 ms by hash).
func tokensByHashSQL(n int) string {
	return `SELECT u.token_hash, u.tenant_id, u.user_id, u.name, u.join_prefixes, u.publish_prefixes, u.expires_at, u.revoked_at, t.disabled
		FROM user_tokens u STRAIGHT_JOIN tenants t ON t.id = u.tenant_id
		WHERE u.token_hash IN (` + placeholders(n) + `)`
}
