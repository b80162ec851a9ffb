package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
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

// validLogChannel reports whether ch can be the channel of a log entry: a
// channel name or an inbox ("@user", where system messages to one user go).
func validLogChannel(ch string) bool { return kaiwa.ValidChannel(ch) || kaiwa.IsInbox(ch) }

// checkMessage validates a message for the log.
func checkMessage(m *kaiwa.Message) error {
	switch {
	case !kaiwa.ValidID(string(m.Tenant)):
		return errors.New("invalid tenant id")
	case !validLogID(m.ID):
		return errors.New("invalid message id")
	case !validLogChannel(m.Channel):
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
// so the log writer may retry a batch, and a message deleted before it
// arrived stays deleted (see [Store.DeleteMessage]).
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
	err := logInsert("messages", "(tenant_id, id, seq, channel, from_user, from_name, text, data, ts, is_system, reply_to, quote, attachments)", 13).
		run(ctx, s.db, len(valid), func(i int) (int, []any) {
			m := valid[i]
			quote, attachments := playerColumns(m)
			size := len(m.Text) + len(m.Data) + len(m.Name) + 256
			return size, []any{m.Tenant, m.ID, m.Seq, m.Channel, m.From, m.Name, m.Text, nullRaw(m.Data), m.TS, m.System,
				nullString(m.ReplyTo), quote, attachments}
		})
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

// bulkInsert inserts many rows with multi-row INSERT statements of at most
// maxRows rows and about appendBytes bytes each.
type bulkInsert struct {
	insert  string // "INSERT INTO t (cols) VALUES "
	ncols   int
	suffix  string // appended to each statement, e.g. ON DUPLICATE KEY UPDATE
	maxRows int
	op      string // context of errors
}

// logInsert is the bulk insert of a log table: rows whose (tenant_id, id)
// is already stored are skipped.
func logInsert(table, cols string, ncols int) bulkInsert {
	return bulkInsert{
		insert: "INSERT INTO " + table + " " + cols + " VALUES ",
		ncols:  ncols,
		// "id = id" skips duplicates of the unique (tenant_id, id) without
		// hiding other errors, which INSERT IGNORE would.
		suffix:  " ON DUPLICATE KEY UPDATE id = id",
		maxRows: appendRows,
		op:      "append " + table,
	}
}

// run inserts n rows through ex; row returns the approximate size and the
// values of row i.
func (b bulkInsert) run(ctx context.Context, ex execer, n int, row func(i int) (int, []any)) error {
	placeholder := "(" + placeholders(b.ncols) + ")"
	for start := 0; start < n; {
		var (
			q    strings.Builder
			args []any
			size int
		)
		q.WriteString(b.insert)
		end := start
		for end < n && end-start < b.maxRows && (end == start || size < appendBytes) {
			sz, vals := row(end)
			if end > start {
				q.WriteString(", ")
			}
			q.WriteString(placeholder)
			args = append(args, vals...)
			size += sz
			end++
		}
		q.WriteString(b.suffix)
		if _, err := ex.ExecContext(ctx, q.String(), args...); err != nil {
			return dbError(b.op, err)
		}
		start = end
	}
	return nil
}

// place is a message's place in the log's order: by ts, then by the
// stream's seq, then by arrival in the log (pk), which breaks ties between
// messages that share a seq.
type place struct {
	ts      int64
	seq, pk uint64
}

// cursor resolves a message id of the tenant to its place in the log. A
// deleted message is still a valid cursor (it may have been a page's last).
func (s *Store) cursor(ctx context.Context, tenant kaiwa.TenantID, id, name string) (place, error) {
	if !validLogID(id) {
		return place{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid %s cursor", name)
	}
	var p place
	err := s.db.QueryRowContext(ctx,
		"SELECT ts, seq, pk FROM messages WHERE tenant_id = ? AND id = ?", tenant, id).Scan(&p.ts, &p.seq, &p.pk)
	if errors.Is(err, sql.ErrNoRows) {
		return place{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown message id %q in %s", id, name)
	}
	if err != nil {
		return place{}, dbError("resolve message cursor", err)
	}
	return p, nil
}

// checkMessageQuery validates the filters of a message query.
func checkMessageQuery(q kaiwa.MessageQuery) error {
	if q.Channel != "" {
		if err := kaiwa.CheckChannel(q.Channel); err != nil {
			return err
		}
	}
	if q.User != "" {
		if err := kaiwa.CheckID("user", q.User); err != nil {
			return err
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "until is before since")
	}
	return nil
}

// messagesSQL returns the query of one page of at most limit messages
// (limit+1 rows, to tell whether more follow). after and before, when not
// nil, are the places of the cursors. Each combination of filters is a
// range scan of one index of the messages table, in index order.
func messagesSQL(tenant kaiwa.TenantID, q kaiwa.MessageQuery, after, before *place, limit int) (string, []any) {
	where := []string{"tenant_id = ?", "deleted_at IS NULL"}
	args := []any{tenant}
	if q.Channel != "" {
		where, args = append(where, "channel = ?"), append(args, q.Channel)
	}
	if q.User != "" {
		where, args = append(where, "from_user = ?"), append(args, q.User)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "ts < ?"), append(args, q.Until.UnixMilli())
	}
	// The leading ts bound lets the index range start at the cursor.
	if p := after; p != nil {
		where = append(where, "ts >= ? AND (ts > ? OR seq > ? OR (seq = ? AND pk > ?))")
		args = append(args, p.ts, p.ts, p.seq, p.seq, p.pk)
	}
	if p := before; p != nil {
		where = append(where, "ts <= ? AND (ts < ? OR seq < ? OR (seq = ? AND pk < ?))")
		args = append(args, p.ts, p.ts, p.seq, p.seq, p.pk)
	}
	order := "ts, seq, pk"
	if q.Desc {
		order = "ts DESC, seq DESC, pk DESC"
	}
	return `SELECT id, seq, channel, from_user, from_name, text, data, ts, is_system,
		reply_to, quote, attachments, edited_at
		FROM messages WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY ` + order + ` LIMIT ?`, append(args, limit+1)
}

// Messages returns one page of a tenant's message log, oldest first (newest
// first when q.Desc): in ts order, messages of the same millisecond in
// stream order (seq). Deleted messages are never returned. Filters:
// q.Channel (empty: every channel, inboxes included), q.User (the sender),
// q.Since ≤ ts < q.Until, and the keyset cursors q.After and q.Before,
// message ids of the same tenant (an unknown id is
// [kaiwa.CodeBadRequest]). q.Limit defaults to 50 and is clamped to 500.
// Next is the id of the page's last message when more may follow: pass it
// as After (or Before when Desc) for the next page, with the same filters.
func (s *Store) Messages(ctx context.Context, tenant kaiwa.TenantID, q kaiwa.MessageQuery) (kaiwa.MessagePage, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.MessagePage{}, err
	}
	if err := checkMessageQuery(q); err != nil {
		return kaiwa.MessagePage{}, err
	}
	var after, before *place
	if q.After != "" {
		p, err := s.cursor(ctx, tenant, q.After, "after")
		if err != nil {
			return kaiwa.MessagePage{}, err
		}
		after = &p
	}
	if q.Before != "" {
		p, err := s.cursor(ctx, tenant, q.Before, "before")
		if err != nil {
			return kaiwa.MessagePage{}, err
		}
		before = &p
	}
	limit := pageLimit(q.Limit)
	query, args := messagesSQL(tenant, q, after, before, limit)
	msgs, next, err := readPage(ctx, s.db, "read messages", query, args, limit,
		func(rows *sql.Rows) (kaiwa.Message, error) {
			m := kaiwa.Message{Tenant: tenant}
			var data sql.NullString
			var pc playerCols
			err := rows.Scan(&m.ID, &m.Seq, &m.Channel, &m.From, &m.Name, &m.Text, &data, &m.TS, &m.System,
				&pc.replyTo, &pc.quote, &pc.attachments, &pc.editedAt)
			if data.Valid {
				m.Data = json.RawMessage(data.String)
			}
			pc.set(&m)
			return m, err
		}, func(m kaiwa.Message) string { return m.ID })
	if err != nil {
		return kaiwa.MessagePage{}, err
	}
	if err := s.withReactions(ctx, tenant, msgs); err != nil {
		return kaiwa.MessagePage{}, err
	}
	return kaiwa.MessagePage{Messages: msgs, Next: next}, nil
}

// readPage runs a keyset page query that asked for limit+1 rows and scans
// them: the page (never nil) and, when a further page exists, the cursor
// of its last entry.
func readPage[T any](ctx context.Context, db *sql.DB, what, query string, args []any, limit int,
	scan func(*sql.Rows) (T, error), cursor func(T) string) ([]T, string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", dbError(what, err)
	}
	defer rows.Close()
	page := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", dbError(what, err)
		}
		page = append(page, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbError(what, err)
	}
	if len(page) > limit {
		return page[:limit], cursor(page[limit-1]), nil
	}
	return page, "", nil
}

// DeleteMessage removes message id of channel ch from the tenant's log,
// leaving a tombstone: the row stays, marked deleted, with its text, data
// and sender name cleared, so that [Store.Messages] never returns it and a
// copy the log writer appends later stays deleted. An id the log has not
// seen yet gets a tombstone of its own only when pending says the message
// exists and may be on its way; otherwise nothing is written, so that no
// later message with that id is suppressed. existed reports whether the
// message was in the log and not yet deleted. [kaiwa.CodeNotFound] when
// the id is stored under another channel; [kaiwa.CodeBadRequest] for an
// invalid channel or id.
func (s *Store) DeleteMessage(ctx context.Context, tenant kaiwa.TenantID, ch, id string, pending bool) (bool, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return false, err
	}
	if !validLogID(id) {
		return false, kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid message id")
	}
	now := s.clock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, dbError("delete message", err)
	}
	defer rollback(tx)
	if !pending {
		// Only a message the log holds can be deleted: no tombstone.
		return s.deleteLogged(ctx, tx, tenant, ch, id, now)
	}
	// Insert the tombstone, or lock the row already there: no gap lock is
	// taken first, so concurrent deletions of one id queue instead of
	// deadlocking. A tombstone's ts is the deletion time, so that it is
	// purged only when the message would have been.
	res, err := tx.ExecContext(ctx, `
		INSERT INTO messages (tenant_id, id, seq, channel, text, ts, deleted_at)
		VALUES (?, ?, 0, ?, '', ?, ?)
		ON DUPLICATE KEY UPDATE id = id`,
		tenant, id, ch, now.UnixMilli(), now)
	if err != nil {
		return false, dbError("delete message", err)
	}
	n, err := affected(res, "delete message")
	if err != nil {
		return false, err
	}
	if n != 0 { // a new tombstone
		if err := tx.Commit(); err != nil {
			return false, dbError("delete message", err)
		}
		return false, nil
	}
	return s.deleteLogged(ctx, tx, tenant, ch, id, now)
}

// deleteLogged marks the logged message id of ch deleted and commits tx.
// existed is false when the log has no such message or it was deleted
// already; [kaiwa.CodeNotFound] when id is another channel's.
func (s *Store) deleteLogged(ctx context.Context, tx *sql.Tx, tenant kaiwa.TenantID, ch, id string, now time.Time) (existed bool, err error) {
	var (
		pk           uint64
		stored, text string
		deleted      sql.NullTime
	)
	err = tx.QueryRowContext(ctx,
		"SELECT pk, channel, text, deleted_at FROM messages WHERE tenant_id = ? AND id = ? FOR UPDATE", tenant, id).
		Scan(&pk, &stored, &text, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbError("delete message", err)
	}
	if stored != ch {
		return false, kaiwa.Errorf(kaiwa.CodeNotFound, "no message %s in %s", id, ch)
	}
	if !deleted.Valid {
		if _, err := tx.ExecContext(ctx, `
			UPDATE messages SET deleted_at = ?, text = '', data = NULL, from_name = ''
			WHERE tenant_id = ? AND id = ?`, now, tenant, id); err != nil {
			return false, dbError("delete message", err)
		}
		if err := reindex(ctx, tx, tenant, ch, pk, text, ""); err != nil {
			return false, err
		}
		existed = true
	}
	if err := tx.Commit(); err != nil {
		return false, dbError("delete message", err)
	}
	return existed, nil
}
