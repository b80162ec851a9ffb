package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/tenants/ngword"
)

// The search index is a table of bigrams (message_grams): every distinct
// pair of neighbouring characters of a message's text in the normalised
// form NG words are matched in ([ngword.Normalize]: case, width and kana
// folded, so "ＧＵＩＬＤ" finds "guild" and "カタカナ" finds "かたかな"),
// with the message's log row. Unsegmented text (Japanese, Chinese) needs
// no word breaking: any substring of two or more characters is found. A
// query's bigrams intersect, newest first, to candidates whose normalised
// text then must hold the query's.
//
// The indexer follows the message log by its row number (pk) on its own
// loop ([Store.RunIndexer]), so the log writer's rate does not carry the
// index's cost; an edit re-indexes its message as it is applied.

// maxGrams bounds the bigrams indexed of one message (a text of the
// default 1000 characters has fewer distinct ones).
const maxGrams = 1000

// searchGrams is the most bigrams of a query a search intersects; the
// normalised text decides the rest.
const searchGrams = 4

// grams returns the distinct bigrams of normalised text, in order of
// first appearance.
func grams(norm string) []string {
	var out []string
	seen := map[string]struct{}{}
	prev := -1
	for i := range norm {
		if prev >= 0 {
			_, size := utf8.DecodeRuneInString(norm[i:])
			g := norm[prev : i+size]
			if _, ok := seen[g]; !ok {
				seen[g] = struct{}{}
				out = append(out, g)
				if len(out) == maxGrams {
					break
				}
			}
		}
		prev = i
	}
	return out
}

// gramInsert is the bulk insert of index rows; a row already there is
// kept.
var gramInsert = bulkInsert{
	insert:  "INSERT INTO message_grams (tenant_id, gram, msg_pk, channel) VALUES ",
	ncols:   4,
	suffix:  " ON DUPLICATE KEY UPDATE msg_pk = msg_pk",
	maxRows: 2000,
	op:      "index messages",
}

// indexRow is one message to index.
type indexRow struct {
	tenant kaiwa.TenantID
	ch     string
	pk     uint64
	grams  []string
}

// insertGrams writes the index rows of msgs.
func insertGrams(ctx context.Context, ex execer, msgs []indexRow) error {
	type gramRow struct {
		m *indexRow
		g string
	}
	var rows []gramRow
	for i := range msgs {
		for _, g := range msgs[i].grams {
			rows = append(rows, gramRow{&msgs[i], g})
		}
	}
	return gramInsert.run(ctx, ex, len(rows), func(i int) (int, []any) {
		r := rows[i]
		return 64, []any{r.m.tenant, []byte(r.g), r.m.pk, r.m.ch}
	})
}

// reindex replaces the index rows of message pk: those of its text before
// an edit by those of its text after ("" when it is deleted). A message the
// indexer has not reached yet is left to it.
func reindex(ctx context.Context, tx *sql.Tx, tenant kaiwa.TenantID, ch string, pk uint64, before, after string) error {
	last, err := indexedUpTo(ctx, tx)
	if err != nil {
		return err
	}
	if pk > last {
		return nil
	}
	if err := deleteGrams(ctx, tx, tenant, []indexRow{{pk: pk, grams: grams(ngword.Normalize(before))}}); err != nil {
		return err
	}
	return insertGrams(ctx, tx, []indexRow{{tenant: tenant, ch: ch, pk: pk, grams: grams(ngword.Normalize(after))}})
}

// indexedUpTo returns the last log row the indexer has read, sharing the
// lock the indexer takes on it: a transaction that changes the index rows
// of a message (an edit, a deletion, a purge) waits for an indexer round
// in progress, so that the round cannot add the rows of a text that the
// transaction removes.
func indexedUpTo(ctx context.Context, tx *sql.Tx) (uint64, error) {
	var last uint64
	if err := tx.QueryRowContext(ctx, "SELECT last_pk FROM search_progress WHERE id = 1 LOCK IN SHARE MODE").Scan(&last); err != nil {
		return 0, dbError("read search progress", err)
	}
	return last, nil
}

// deleteGrams deletes the index rows of msgs (pk and grams) by primary
// key.
func deleteGrams(ctx context.Context, tx *sql.Tx, tenant kaiwa.TenantID, msgs []indexRow) error {
	const chunk = 1000
	var (
		args []any
		n    int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := "DELETE FROM message_grams WHERE tenant_id = ? AND (gram, msg_pk) IN (" +
			strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + ")"
		_, err := tx.ExecContext(ctx, q, append([]any{tenant}, args...)...)
		args, n = args[:0], 0
		return dbErr("unindex messages", err)
	}
	for _, m := range msgs {
		for _, g := range m.grams {
			args = append(args, []byte(g), m.pk)
			if n++; n == chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// IndexMessages adds to the search index up to max rows of the message
// log that it does not hold yet, and reports how many it read. Indexers
// of several processes take turns (the progress row is locked).
func (s *Store) IndexMessages(ctx context.Context, max int) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, dbError("index messages", err)
	}
	defer rollback(tx)
	var last uint64
	if err := tx.QueryRowContext(ctx, "SELECT last_pk FROM search_progress WHERE id = 1 FOR UPDATE").Scan(&last); err != nil {
		return 0, dbError("index messages", err)
	}
	rows, err := tx.QueryContext(ctx, `
		SELECT pk, tenant_id, channel, text, deleted_at IS NOT NULL FROM messages
		WHERE pk > ? ORDER BY pk LIMIT ?`, last, max)
	if err != nil {
		return 0, dbError("index messages", err)
	}
	var msgs []indexRow
	n := 0
	for rows.Next() {
		var r indexRow
		var text string
		var deleted bool
		if err := rows.Scan(&r.pk, &r.tenant, &r.ch, &text, &deleted); err != nil {
			rows.Close()
			return 0, dbError("index messages", err)
		}
		n++
		last = r.pk
		if !deleted && text != "" {
			r.grams = grams(ngword.Normalize(text))
			msgs = append(msgs, r)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, dbError("index messages", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := insertGrams(ctx, tx, msgs); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE search_progress SET last_pk = ? WHERE id = 1", last); err != nil {
		return 0, dbError("index messages", err)
	}
	return n, dbErr("index messages", tx.Commit())
}

// RunIndexer keeps the search index up with the message log until ctx
// ends: it indexes what is new, and waits idle (between rounds that find
// nothing new) for interval (default 200ms). Failures are logged and
// retried.
func (s *Store) RunIndexer(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	const batch = 1000
	for ctx.Err() == nil {
		n, err := s.IndexMessages(ctx, batch)
		if err != nil && ctx.Err() == nil {
			log.Warn("search indexer", "err", err)
		}
		if n == batch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// maxCandidates bounds the candidates one search page reads; a page that
// ends there has a Next to go on from.
const maxCandidates = 5000

// Search implements [kaiwa.PlayerStore].
func (s *Store) Search(ctx context.Context, tenant kaiwa.TenantID, q kaiwa.SearchQuery) (kaiwa.SearchPage, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.SearchPage{}, err
	}
	if err := q.Check(); err != nil {
		return kaiwa.SearchPage{}, err
	}
	norm := ngword.Normalize(q.Q)
	gs := grams(norm)
	if len(gs) == 0 {
		return kaiwa.SearchPage{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "q must have at least %d letters", kaiwa.MinSearchLen)
	}
	gs = spread(gs, searchGrams)
	limit := min(pageLimit(q.Limit), 100)
	var cursor uint64
	if q.Before != "" {
		n, err := strconv.ParseUint(q.Before, 10, 64)
		if err != nil || n == 0 {
			return kaiwa.SearchPage{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "before is not a search cursor")
		}
		cursor = n
	}
	page := kaiwa.SearchPage{Messages: []kaiwa.Message{}}
	batch := max(4*limit, 200)
	for read := 0; read < maxCandidates; {
		query, args := searchSQL(tenant, q, gs, cursor, batch)
		rows, err := s.db.QueryContext(ctx, query, args...)
		if err != nil {
			return kaiwa.SearchPage{}, dbError("search", err)
		}
		n := 0
		for rows.Next() {
			m := kaiwa.Message{Tenant: tenant}
			var pk uint64
			var data sql.NullString
			var pc playerCols
			if err := rows.Scan(&pk, &m.ID, &m.Seq, &m.Channel, &m.From, &m.Name, &m.Text, &data, &m.TS, &m.System,
				&pc.replyTo, &pc.quote, &pc.attachments, &pc.editedAt); err != nil {
				rows.Close()
				return kaiwa.SearchPage{}, dbError("search", err)
			}
			n++
			cursor = pk
			if data.Valid {
				m.Data = json.RawMessage(data.String)
			}
			pc.set(&m)
			if !strings.Contains(ngword.Normalize(m.Text), norm) {
				continue
			}
			page.Messages = append(page.Messages, m)
			if len(page.Messages) == limit {
				break
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return kaiwa.SearchPage{}, dbError("search", err)
		}
		read += n
		if len(page.Messages) == limit || read >= maxCandidates {
			page.Next = strconv.FormatUint(cursor, 10)
			break
		}
		if n < batch {
			break
		}
	}
	if err := s.withReactions(ctx, tenant, page.Messages); err != nil {
		return kaiwa.SearchPage{}, err
	}
	return page, nil
}

// spread returns at most n of gs: the first, the last and some between,
// so that the intersection covers the whole query.
func spread(gs []string, n int) []string {
	if len(gs) <= n {
		return gs
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, gs[i*(len(gs)-1)/(n-1)])
	}
	return out
}

// searchSQL returns the query of one batch of candidates: the messages
// whose index rows hold every one of gs, newest first, below cursor (0:
// from the newest), narrowed by q's channels, user and times.
func searchSQL(tenant kaiwa.TenantID, q kaiwa.SearchQuery, gs []string, cursor uint64, batch int) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT STRAIGHT_JOIN m.pk, m.id, m.seq, m.channel, m.from_user, m.from_name, m.text, m.data,
		m.ts, m.is_system, m.reply_to, m.quote, m.attachments, m.edited_at
		FROM message_grams g0`)
	for i, g := range gs[1:] {
		n := strconv.Itoa(i + 1)
		b.WriteString(" JOIN message_grams g" + n + " ON g" + n + ".tenant_id = g0.tenant_id AND g" + n +
			".gram = ? AND g" + n + ".msg_pk = g0.msg_pk")
		args = append(args, []byte(g))
	}
	b.WriteString(" JOIN messages m ON m.pk = g0.msg_pk WHERE g0.tenant_id = ? AND g0.gram = ?")
	args = append(args, tenant, []byte(gs[0]))
	if cursor != 0 {
		b.WriteString(" AND g0.msg_pk < ?")
		args = append(args, cursor)
	}
	if len(q.Channels) > 0 {
		b.WriteString(" AND g0.channel IN (" + placeholders(len(q.Channels)) + ")")
		for _, ch := range q.Channels {
			args = append(args, ch)
		}
	}
	b.WriteString(" AND m.tenant_id = ? AND m.deleted_at IS NULL")
	args = append(args, tenant)
	if q.User != "" {
		b.WriteString(" AND m.from_user = ?")
		args = append(args, q.User)
	}
	if !q.Since.IsZero() {
		b.WriteString(" AND m.ts >= ?")
		args = append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		b.WriteString(" AND m.ts < ?")
		args = append(args, q.Until.UnixMilli())
	}
	b.WriteString(" ORDER BY g0.msg_pk DESC LIMIT ?")
	return b.String(), append(args, batch)
}
