package tenants

import (
	"context"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// BusiestChannels returns the tenant's channels (direct channels and
// inboxes included) with the most messages logged since since, busiest
// first, at most limit of them.
func (s *Store) BusiestChannels(ctx context.Context, tenant kaiwa.TenantID, since time.Time, limit int) ([]kaiwa.ChannelCount, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 100)
	rows, err := s.db.QueryContext(ctx, `
		SELECT channel, COUNT(*) AS n FROM messages
		WHERE tenant_id = ? AND ts >= ?
		GROUP BY channel ORDER BY n DESC, channel LIMIT ?`,
		tenant, since.UnixMilli(), limit)
	if err != nil {
		return nil, dbError("busiest channels", err)
	}
	defer rows.Close()
	out := []kaiwa.ChannelCount{}
	for rows.Next() {
		var c kaiwa.ChannelCount
		if err := rows.Scan(&c.Channel, &c.Messages); err != nil {
			return nil, dbError("busiest channels", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("busiest channels", err)
	}
	return out, nil
}

// MemberCounts returns the number of members of each of the tenant's
// channels that has any.
func (s *Store) MemberCounts(ctx context.Context, tenant kaiwa.TenantID) (map[string]int, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT channel, COUNT(*) FROM members WHERE tenant_id = ? GROUP BY channel", tenant)
	if err != nil {
		return nil, dbError("member counts", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ch string
		var n int
		if err := rows.Scan(&ch, &n); err != nil {
			return nil, dbError("member counts", err)
		}
		out[ch] = n
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("member counts", err)
	}
	return out, nil
}
