package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

// Limits of log queries and appends.
const (
	// DefaultPageLimit is the page size of a query that names none.
	DefaultPageLimit = 50
	// MaxPageLimit is the largest page; larger limits are clamped to it.
	MaxPageLimit = 500
	// MaxLogID is the longest message or event id the logs store.
	MaxLogID = 64
	// appendRows and appendBytes bound one INSERT statement of an append
	// (well under MariaDB's default 16 MiB max_allowed_packet).
	appendRows  = 500
	appendBytes = 2 << 20
)

// pageLimit applies the default and the maximum to a requested page size.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultPageLimit
	case n > MaxPageLimit:
		return MaxPageLimit
	}
	return n
}

// validLogID reports whether id can be a message or event id: 1 to
// [MaxLogID] printable ASCII characters.
func validLogID(id string) bool {
	if id == "" || len(id) > MaxLogID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkMessage validates a message for the log.
func checkMessage(m *kaiwa.Message) error {
	switch {
	case !kaiwa.ValidID(string(m.Tenant)):
		return errors.New("invalid tenant id")
	case !validLogID(m.ID):
		return errors.New("invalid message id")
	case !kaiwa.ValidChannel(m.Channel):
		return errors.New("invalid channel name")
	case m.From != "" && !kaiwa.ValidID(m.From):
		return errors.New("invalid sender id")
	case !utf8.ValidString(m.Name) || utf8.RuneCountInString(m.Name) > kaiwa.MaxNameLen:
		return fmt.Errorf("sender name must be valid UTF-8 of at most %d characters", kaiwa.MaxNameLen)
	case !utf8.ValidString(m.Text):
		return errors.New("text is not valid UTF-8")
	case len(m.Data) > 0 && (!utf8.Valid(m.Data) || !json.Valid(m.Data)):
		return errors.New("data is not valid JSON")
	}
	return nil
}

// nullRaw stores an empty raw JSON value as NULL.
func nullRaw(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// AppendMessages stores messages (ID, Seq and Tenant set), which may belong
// to several tenants, with one multi-row INSERT per up to 500 messages. It
// is idempotent: a message already stored (same tenant and id) is skipped,
// so the log writer may retry a batch.
//
// A message that cannot be stored as it is (bad tenant, id, channel or
// sender, name too long, text or name not UTF-8, data not JSON) is skipped
// while the rest of the batch is stored, and the returned
// [kaiwa.CodeBadRequest] error names it. Retrying cannot store it, so a
// writer should log such an error and move on rather than retry.
func (s *Store) AppendMessages(ctx context.Context, msgs []kaiwa.Message) error {
	var skipped []string
	valid := make([]*kaiwa.Message, 0, len(msgs))
	for i := range msgs {
		if err := checkMessage(&msgs[i]); err != nil {
			skipped = append(skipped, fmt.Sprintf("message %d (%q): %v", i, msgs[i].ID, err))
			continue
		}
		valid = append(valid, &msgs[i])
	}
	const cols = "(tenant_id, id, seq, channel, from_user, from_name, text, data, ts, is_system)"
	err := appendChunks(ctx, s.db, len(valid), func(i int) (int, []any) {
		m := valid[i]
		size := len(m.Text) + len(m.Data) + len(m.Name) + 256
		return size, []any{m.Tenant, m.ID, m.Seq, m.Channel, m.From, m.Name, m.Text, nullRaw(m.Data), m.TS, m.System}
	}, "INSERT INTO messages "+cols+" VALUES ", 10, "append messages")
	if err != nil {
		return err
	}
	return skippedError(skipped)
}

// skippedError reports the invalid entries a log append skipped.
func skippedError(skipped []string) error {
	if len(skipped) == 0 {
		return nil
	}
	const shown = 5
	total, more := len(skipped), ""
	if total > shown {
		more = fmt.Sprintf("; and %d more", total-shown)
		skipped = skipped[:shown]
	}
	return kaiwa.Errorf(kaiwa.CodeBadRequest, "skipped %d invalid: %s%s", total, strings.Join(skipped, "; "), more)
}

// appendChunks inserts n rows in chunks of at most appendRows rows and about
// appendBytes bytes, one statement each, skipping rows whose unique key is
// already stored. row returns the approximate size and the values of row i.
func appendChunks(ctx context.Context, db *sql.DB, n int, row func(i int) (int, []any), insert string, ncols int, op string) error {
	placeholder := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
	for start := 0; start < n; {
		var (
			q    strings.Builder
			args []any
			size int
		)
		q.WriteString(insert)
		end := start
		for end < n && end-start < appendRows && (end == start || size < appendBytes) {
			sz, vals := row(end)
			if end > start {
				q.WriteString(", ")
			}
			q.WriteString(placeholder)
			args = append(args, vals...)
			size += sz
			end++
		}
		// "id = id" skips duplicates of the unique (tenant_id, id) without
		// hiding other errors, which INSERT IGNORE would.
		q.WriteString(" ON DUPLICATE KEY UPDATE id = id")
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return dbError(op, err)
		}
		start = end
	}
	return nil
}

// cursorSeq resolves a message id of the tenant to its place in the log.
func (s *Store) cursorSeq(ctx context.Context, tenant kaiwa.TenantID, id, name string) (seq, pk uint64, err error) {
	if !validLogID(id) {
		return 0, 0, kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid %s cursor", name)
	}
	err = s.db.QueryRowContext(ctx,
		"SELECT seq, pk FROM messages WHERE tenant_id = ? AND id = ?", tenant, id).Scan(&seq, &pk)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown message id %q in %s", id, name)
	}
	if err != nil {
		return 0, 0, dbError("resolve message cursor", err)
	}
	return seq, pk, nil
}

// Messages returns one page of a tenant's message log in sequence order,
// oldest first (newest first when q.Desc). Filters: q.Channel, q.User (the
// sender), q.Since ≤ ts < q.Until, and the keyset cursors q.After and
// q.Before, message ids of the same tenant (an unknown id is
// [kaiwa.CodeBadRequest]). q.Limit defaults to 50 and is clamped to 500.
// Next is the id of the page's last message when more may follow: pass it
// as After (or Before when Desc) for the next page.
func (s *Store) Messages(ctx context.Context, tenant kaiwa.TenantID, q kaiwa.MessageQuery) (kaiwa.MessagePage, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.MessagePage{}, err
	}
	where := []string{"tenant_id = ?"}
	args := []any{tenant}
	if q.Channel != "" {
		if err := kaiwa.CheckChannel(q.Channel); err != nil {
			return kaiwa.MessagePage{}, err
		}
		where, args = append(where, "channel = ?"), append(args, q.Channel)
	}
	if q.User != "" {
		if err := kaiwa.CheckID("user", q.User); err != nil {
			return kaiwa.MessagePage{}, err
		}
		where, args = append(where, "from_user = ?"), append(args, q.User)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "ts < ?"), append(args, q.Until.UnixMilli())
	}
	if q.After != "" {
		seq, pk, err := s.cursorSeq(ctx, tenant, q.After, "after")
		if err != nil {
			return kaiwa.MessagePage{}, err
		}
		where, args = append(where, "seq >= ? AND (seq > ? OR pk > ?)"), append(args, seq, seq, pk)
	}
	if q.Before != "" {
		seq, pk, err := s.cursorSeq(ctx, tenant, q.Before, "before")
		if err != nil {
			return kaiwa.MessagePage{}, err
		}
		where, args = append(where, "seq <= ? AND (seq < ? OR pk < ?)"), append(args, seq, seq, pk)
	}
	order := "seq, pk"
	if q.Desc {
		order = "seq DESC, pk DESC"
	}
	limit := pageLimit(q.Limit)
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, seq, channel, from_user, from_name, text, data, ts, is_system
		FROM messages WHERE `+strings.Join(where, " AND ")+`
		ORDER BY `+order+` LIMIT ?`, args...)
	if err != nil {
		return kaiwa.MessagePage{}, dbError("read messages", err)
	}
	defer rows.Close()
	page := kaiwa.MessagePage{Messages: []kaiwa.Message{}}
	for rows.Next() {
		m := kaiwa.Message{Tenant: tenant}
		var data sql.NullString
		if err := rows.Scan(&m.ID, &m.Seq, &m.Channel, &m.From, &m.Name, &m.Text, &data, &m.TS, &m.System); err != nil {
			return kaiwa.MessagePage{}, dbError("read messages", err)
		}
		if data.Valid {
			m.Data = json.RawMessage(data.String)
		}
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return kaiwa.MessagePage{}, dbError("read messages", err)
	}
	if len(page.Messages) > limit {
		page.Messages = page.Messages[:limit]
		page.Next = page.Messages[limit-1].ID
	}
	return page, nil
}
