package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"github.com/kaiwa-chat/kaiwa"
)

var (
	_ kaiwa.PlayerStore = (*Store)(nil)
	_ kaiwa.EditLog     = (*Store)(nil)
)

// playerColumns returns a message's quote and attachments as the log
// stores them: JSON, or NULL when it has none.
func playerColumns(m *kaiwa.Message) (quote, attachments any) {
	if m.Quote != nil {
		if b, err := json.Marshal(m.Quote); err == nil {
			quote = string(b)
		}
	}
	if len(m.Attachments) > 0 {
		if b, err := json.Marshal(m.Attachments); err == nil {
			attachments = string(b)
		}
	}
	return quote, attachments
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// playerCols are the log's columns of what players do with a message, as
// read.
type playerCols struct {
	replyTo, quote, attachments sql.NullString
	editedAt                    sql.NullInt64
}

// set copies the columns into m.
func (pc *playerCols) set(m *kaiwa.Message) {
	m.ReplyTo = pc.replyTo.String
	m.EditedAt = pc.editedAt.Int64
	if pc.quote.Valid {
		var q kaiwa.Quote
		if json.Unmarshal([]byte(pc.quote.String), &q) == nil {
			m.Quote = &q
		}
	}
	if pc.attachments.Valid {
		_ = json.Unmarshal([]byte(pc.attachments.String), &m.Attachments)
	}
}

// withReactions sets the reaction counts of msgs, in one query.
func (s *Store) withReactions(ctx context.Context, tenant kaiwa.TenantID, msgs []kaiwa.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	at := make(map[string]int, len(msgs))
	args := []any{tenant}
	for i := range msgs {
		at[msgs[i].ID] = i
		args = append(args, msgs[i].ID)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, emoji, COUNT(*) FROM message_reactions
		WHERE tenant_id = ? AND id IN (?`+strings.Repeat(",?", len(msgs)-1)+`)
		GROUP BY id, emoji ORDER BY id, MIN(created_at), emoji`, args...)
	if err != nil {
		return dbError("read reactions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var r kaiwa.Reaction
		var emoji []byte
		if err := rows.Scan(&id, &emoji, &r.Count); err != nil {
			return dbError("read reactions", err)
		}
		r.Emoji = string(emoji)
		if i, ok := at[id]; ok {
			msgs[i].Reactions = append(msgs[i].Reactions, r)
		}
	}
	return dbErr("read reactions", rows.Err())
}

// React implements [kaiwa.PlayerStore].
func (s *Store) React(ctx context.Context, tenant kaiwa.TenantID, ch, id, user, emoji string, remove bool) (bool, []kaiwa.Reaction, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return false, nil, err
	}
	if !validLogID(id) {
		return false, nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid message id")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, nil, dbError("react", err)
	}
	defer rollback(tx)
	var res sql.Result
	if remove {
		res, err = tx.ExecContext(ctx,
			"DELETE FROM message_reactions WHERE tenant_id = ? AND id = ? AND emoji = ? AND user_id = ?",
			tenant, id, []byte(emoji), user)
	} else {
		// The kinds of reaction a message has are bounded: a new kind is
		// refused past the limit. The lock on the message's rows makes
		// the count and the insert one step.
		var kinds int
		var has bool
		if err := tx.QueryRowContext(ctx, `
			SELECT COUNT(DISTINCT emoji), COALESCE(MAX(emoji = ?), 0) FROM message_reactions
			WHERE tenant_id = ? AND id = ? FOR UPDATE`, []byte(emoji), tenant, id).Scan(&kinds, &has); err != nil {
			return false, nil, dbError("react", err)
		}
		if !has && kinds >= kaiwa.MaxReactionKinds {
			return false, nil, kaiwa.Errorf(kaiwa.CodeTooLarge, "a message has at most %d kinds of reaction", kaiwa.MaxReactionKinds)
		}
		res, err = tx.ExecContext(ctx, `
			INSERT INTO message_reactions (tenant_id, id, emoji, user_id, channel, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE user_id = user_id`,
			tenant, id, []byte(emoji), user, ch, s.clock())
	}
	if err != nil {
		return false, nil, dbError("react", err)
	}
	n, err := affected(res, "react")
	if err != nil {
		return false, nil, err
	}
	msgs := []kaiwa.Message{{ID: id}}
	if err := tx.Commit(); err != nil {
		return false, nil, dbError("react", err)
	}
	if err := s.withReactions(ctx, tenant, msgs); err != nil {
		return false, nil, err
	}
	counts := msgs[0].Reactions
	if counts == nil {
		counts = []kaiwa.Reaction{}
	}
	return n > 0, counts, nil
}

// SetCursor implements [kaiwa.PlayerStore].
func (s *Store) SetCursor(ctx context.Context, tenant kaiwa.TenantID, user, ch string, seq uint64) (kaiwa.Cursor, bool, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return kaiwa.Cursor{}, false, err
	}
	now := s.clock()
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO read_cursors (tenant_id, user_id, channel, seq, updated_at) VALUES (?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE updated_at = IF(VALUES(seq) > seq, VALUES(updated_at), updated_at),
		                        seq = GREATEST(seq, VALUES(seq))`,
		tenant, user, ch, seq, now)
	if err != nil {
		return kaiwa.Cursor{}, false, dbError("set cursor", err)
	}
	n, err := affected(res, "set cursor")
	if err != nil {
		return kaiwa.Cursor{}, false, err
	}
	c := kaiwa.Cursor{Channel: ch}
	if err := s.db.QueryRowContext(ctx,
		"SELECT seq, updated_at FROM read_cursors WHERE tenant_id = ? AND user_id = ? AND channel = ?",
		tenant, user, ch).Scan(&c.Seq, &c.UpdatedAt); err != nil {
		return kaiwa.Cursor{}, false, dbError("set cursor", err)
	}
	return c, n > 0 && c.Seq == seq, nil
}

// Cursors implements [kaiwa.PlayerStore].
func (s *Store) Cursors(ctx context.Context, tenant kaiwa.TenantID, user string) ([]kaiwa.Cursor, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT channel, seq, updated_at FROM read_cursors WHERE tenant_id = ? AND user_id = ? ORDER BY channel",
		tenant, user)
	if err != nil {
		return nil, dbError("read cursors", err)
	}
	defer rows.Close()
	out := []kaiwa.Cursor{}
	for rows.Next() {
		var c kaiwa.Cursor
		if err := rows.Scan(&c.Channel, &c.Seq, &c.UpdatedAt); err != nil {
			return nil, dbError("read cursors", err)
		}
		out = append(out, c)
	}
	return out, dbErr("read cursors", rows.Err())
}

// unreadChunk is how many channels one unread query counts.
const unreadChunk = 100

// Unread implements [kaiwa.PlayerStore]: for each channel, the messages
// of others after the user's cursor, counted up to
// [kaiwa.MaxUnreadCount] + 1 on the (channel, seq) index, so that a
// channel far behind costs no more than that.
func (s *Store) Unread(ctx context.Context, tenant kaiwa.TenantID, user string, chs []string) ([]kaiwa.Unread, error) {
	if len(chs) == 0 {
		return []kaiwa.Unread{}, nil
	}
	cursors, err := s.Cursors(ctx, tenant, user)
	if err != nil {
		return nil, err
	}
	read := make(map[string]uint64, len(cursors))
	for _, c := range cursors {
		read[c.Channel] = c.Seq
	}
	asks := make([]unreadAsk, len(chs))
	for i, ch := range chs {
		asks[i] = unreadAsk{user: user, ch: ch, read: read[ch]}
	}
	counts, err := s.countUnread(ctx, tenant, asks)
	if err != nil {
		return nil, err
	}
	out := make([]kaiwa.Unread, len(chs))
	for i, a := range asks {
		out[i] = kaiwa.Unread{Channel: a.ch, Count: counts[i], Read: a.read}
	}
	return out, nil
}

// unreadAsk is one count of [Store.countUnread]: user's unread messages
// in ch after seq read.
type unreadAsk struct {
	user, ch string
	read     uint64
}

// countUnread counts the messages of others than each ask's user in its
// channel after its read seq, up to [kaiwa.MaxUnreadCount], in order: one
// query per [unreadChunk] asks.
func (s *Store) countUnread(ctx context.Context, tenant kaiwa.TenantID, asks []unreadAsk) ([]int, error) {
	out := make([]int, len(asks))
	for start := 0; start < len(asks); start += unreadChunk {
		part := asks[start:min(start+unreadChunk, len(asks))]
		var q strings.Builder
		args := make([]any, 0, 6*len(part))
		for i, a := range part {
			if i > 0 {
				q.WriteString(" UNION ALL ")
			}
			q.WriteString(`SELECT ?, (SELECT COUNT(*) FROM (SELECT 1 FROM messages
				WHERE tenant_id = ? AND channel = ? AND seq > ? AND from_user <> ? AND deleted_at IS NULL
				ORDER BY seq LIMIT ?) x)`)
			args = append(args, start+i, tenant, a.ch, a.read, a.user, kaiwa.MaxUnreadCount+1)
		}
		rows, err := s.db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, dbError("count unread", err)
		}
		for rows.Next() {
			var i, n int
			if err := rows.Scan(&i, &n); err != nil {
				rows.Close()
				return nil, dbError("count unread", err)
			}
			if i >= start && i < start+len(part) {
				out[i] = min(n, kaiwa.MaxUnreadCount)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, dbError("count unread", err)
		}
	}
	return out, nil
}

var _ kaiwa.PlayerStarter = (*Store)(nil)

// StartPlayers implements [kaiwa.PlayerStarter]: per tenant, one query
// for the blocks and the read cursors of all the requests' users, and one
// per [unreadChunk] channels counted. Each request gets what
// [Store.Blocks] and [Store.Unread] would give it; a database error fails
// the requests of the tenant it happened for.
func (s *Store) StartPlayers(ctx context.Context, reqs []kaiwa.PlayerStartRequest) []kaiwa.PlayerStartResult {
	out := make([]kaiwa.PlayerStartResult, len(reqs))
	byTenant := map[kaiwa.TenantID][]int{}
	var order []kaiwa.TenantID
	for i, r := range reqs {
		if _, ok := byTenant[r.Tenant]; !ok {
			order = append(order, r.Tenant)
		}
		byTenant[r.Tenant] = append(byTenant[r.Tenant], i)
	}
	for _, t := range order {
		idx := byTenant[t]
		if err := s.startTenantPlayers(ctx, t, reqs, idx, out); err != nil {
			for _, i := range idx {
				out[i] = kaiwa.PlayerStartResult{Err: err}
			}
		}
	}
	return out
}

// startTenantPlayers answers the requests reqs[idx] of tenant t into out.
func (s *Store) startTenantPlayers(ctx context.Context, t kaiwa.TenantID, reqs []kaiwa.PlayerStartRequest, idx []int, out []kaiwa.PlayerStartResult) error {
	users := make([]any, 0, len(idx))
	seen := make(map[string]bool, len(idx))
	for _, i := range idx {
		if u := reqs[i].User; !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	// The cursors count only for users with channels to count.
	counted := make([]any, 0, len(idx))
	seen = make(map[string]bool, len(idx))
	for _, i := range idx {
		if u := reqs[i].User; len(reqs[i].Channels) > 0 && !seen[u] {
			seen[u] = true
			counted = append(counted, u)
		}
	}
	// Blocks and cursors in one query: a connect storm's batches are
	// small, and each round trip costs the database more than the rows.
	query := "SELECT 0, user_id, other_id, 0 FROM user_blocks WHERE tenant_id = ? AND user_id IN (" + placeholders(len(users)) + ")"
	args := append([]any{t}, users...)
	if len(counted) > 0 {
		query += " UNION ALL SELECT 1, user_id, channel, seq FROM read_cursors WHERE tenant_id = ? AND user_id IN (" + placeholders(len(counted)) + ")"
		args = append(append(args, t), counted...)
	}
	blocks := make(map[string][]string, len(users))
	read := make(map[[2]string]uint64)
	err := s.eachRow(ctx, "read player state", func(rows *sql.Rows) error {
		var (
			part     int
			u, other string
			seq      uint64
		)
		if err := rows.Scan(&part, &u, &other, &seq); err != nil {
			return err
		}
		if part == 0 {
			blocks[u] = append(blocks[u], other)
		} else {
			read[[2]string{u, other}] = seq
		}
		return nil
	}, query+" ORDER BY 1, 2, 3", args...)
	if err != nil {
		return err
	}
	var asks []unreadAsk
	for _, i := range idx {
		r := reqs[i]
		for _, ch := range r.Channels {
			asks = append(asks, unreadAsk{user: r.User, ch: ch, read: read[[2]string{r.User, ch}]})
		}
	}
	counts, err := s.countUnread(ctx, t, asks)
	if err != nil {
		return err
	}
	for _, i := range idx {
		r := reqs[i]
		st := kaiwa.PlayerStart{Blocks: blocks[r.User]}
		if st.Blocks == nil {
			st.Blocks = []string{}
		}
		if len(r.Channels) > 0 {
			st.Unread = make([]kaiwa.Unread, len(r.Channels))
			for j, ch := range r.Channels {
				st.Unread[j] = kaiwa.Unread{Channel: ch, Count: counts[0], Read: asks[0].read}
				counts, asks = counts[1:], asks[1:]
			}
		}
		out[i].Start = st
	}
	return nil
}

// eachRow runs query and calls scan on each row; what names the read in
// errors.
func (s *Store) eachRow(ctx context.Context, what string, scan func(*sql.Rows) error, query string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return dbError(what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return dbError(what, err)
		}
	}
	return dbErr(what, rows.Err())
}

// Block implements [kaiwa.PlayerStore].
func (s *Store) Block(ctx context.Context, tenant kaiwa.TenantID, user, other string, unblock bool) (bool, error) {
	if err := checkTenant(tenant); err != nil {
		return false, err
	}
	if unblock {
		res, err := s.db.ExecContext(ctx,
			"DELETE FROM user_blocks WHERE tenant_id = ? AND user_id = ? AND other_id = ?", tenant, user, other)
		if err != nil {
			return false, dbError("unblock", err)
		}
		n, err := affected(res, "unblock")
		return n > 0, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx,
		"SELECT COUNT(*) FROM user_blocks WHERE tenant_id = ? AND user_id = ?", tenant, user).Scan(&n); err != nil {
		return false, dbError("block", err)
	}
	if n >= kaiwa.MaxBlocks {
		return false, kaiwa.Errorf(kaiwa.CodeTooLarge, "a user blocks at most %d users", kaiwa.MaxBlocks)
	}
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO user_blocks (tenant_id, user_id, other_id, created_at) VALUES (?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE other_id = other_id`, tenant, user, other, s.clock())
	if err != nil {
		return false, dbError("block", err)
	}
	added, err := affected(res, "block")
	return added > 0, err
}

// Blocks implements [kaiwa.PlayerStore].
func (s *Store) Blocks(ctx context.Context, tenant kaiwa.TenantID, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT other_id FROM user_blocks WHERE tenant_id = ? AND user_id = ? ORDER BY other_id", tenant, user)
	if err != nil {
		return nil, dbError("read blocks", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, dbError("read blocks", err)
		}
		out = append(out, o)
	}
	return out, dbErr("read blocks", rows.Err())
}

// Blocking implements [kaiwa.PlayerStore].
func (s *Store) Blocking(ctx context.Context, tenant kaiwa.TenantID, user, other string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx,
		"SELECT 1 FROM user_blocks WHERE tenant_id = ? AND user_id = ? AND other_id = ?", tenant, user, other).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, dbErr("read blocks", err)
}

// MessageEdits implements [kaiwa.PlayerStore].
func (s *Store) MessageEdits(ctx context.Context, tenant kaiwa.TenantID, ch, id string) ([]kaiwa.MessageEdit, error) {
	if err := checkChannelRef(tenant, ch); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, channel, seq, editor, previous, text, edited_at FROM message_edits
		WHERE tenant_id = ? AND id = ? AND channel = ? ORDER BY seq`, tenant, id, ch)
	if err != nil {
		return nil, dbError("read edits", err)
	}
	defer rows.Close()
	out := []kaiwa.MessageEdit{}
	for rows.Next() {
		var e kaiwa.MessageEdit
		if err := rows.Scan(&e.ID, &e.Channel, &e.Seq, &e.By, &e.Previous, &e.Text, &e.EditedAt); err != nil {
			return nil, dbError("read edits", err)
		}
		out = append(out, e)
	}
	return out, dbErr("read edits", rows.Err())
}

// ApplyEdits implements [kaiwa.EditLog]: each edit (in stream order)
// replaces its message's text unless a later edit was applied already,
// keeps the text before in message_edits, and brings the search index up
// to date when it holds the message. An edit of a message the log does
// not hold (deleted) is dropped.
func (s *Store) ApplyEdits(ctx context.Context, edits []kaiwa.Message) error {
	for i := range edits {
		if err := s.applyEdit(ctx, &edits[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyEdit(ctx context.Context, e *kaiwa.Message) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("apply edit", err)
	}
	defer rollback(tx)
	var (
		pk        uint64
		ch, text  string
		editedSeq sql.NullInt64
		deleted   sql.NullTime
	)
	err = tx.QueryRowContext(ctx, `
		SELECT pk, channel, text, edited_seq, deleted_at FROM messages
		WHERE tenant_id = ? AND id = ? FOR UPDATE`, e.Tenant, e.Target).Scan(&pk, &ch, &text, &editedSeq, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return dbError("apply edit", err)
	}
	if deleted.Valid || ch != e.Channel || editedSeq.Valid && uint64(editedSeq.Int64) >= e.Seq {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO message_edits (tenant_id, edit_id, id, channel, seq, editor, previous, text, edited_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE edit_id = edit_id`,
		e.Tenant, e.ID, e.Target, ch, e.Seq, e.From, text, e.Text, e.EditedAt); err != nil {
		return dbError("apply edit", err)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE messages SET text = ?, edited_at = ?, edited_seq = ? WHERE pk = ?",
		e.Text, e.EditedAt, e.Seq, pk); err != nil {
		return dbError("apply edit", err)
	}
	if err := reindex(ctx, tx, e.Tenant, ch, pk, text, e.Text); err != nil {
		return err
	}
	return dbErr("apply edit", tx.Commit())
}

// dbErr is [dbError] for an error that may be nil.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return dbError(op, err)
}
