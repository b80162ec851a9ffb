package tenants

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/tenants/ngword"
)

// DefaultPurgeBatch is the batch size of [Store.Purge] when given none.
const DefaultPurgeBatch = 1000

// PurgeStats counts what one [Store.Purge] deleted.
type PurgeStats struct {
	// Tenants is the number of tenants whose logs were purged.
	Tenants int `json:"tenants"`
	// Messages counts messages and tombstones, Events log events, Tokens
	// user tokens and Sanctions expired bans and mutes.
	Messages  int64 `json:"messages"`
	Events    int64 `json:"events"`
	Tokens    int64 `json:"tokens"`
	Sanctions int64 `json:"sanctions"`
	// Statements is the number of DELETE statements run.
	Statements int `json:"statements"`
}

// Purge deletes what no one may read any more: per tenant, the messages
// (tombstones included, with their search index rows) and events older than the tenant's RetentionDays
// ([kaiwa.Settings], defaults applied) before now; the user tokens that
// expired more than [Store.TokenGrace] before now; and the sanctions that
// ended by now. It deletes at most batch rows per statement
// ([DefaultPurgeBatch] when batch ≤ 0), selecting them first by an index
// and then deleting them by primary key, so that no statement holds locks
// for long, and loops until nothing is left. It stops at the first
// database error or when ctx ends, returning what it deleted so far.
//
// Purge is meant to run periodically in the API tier. Runs in several
// processes at once are safe; they only share the work.
func (s *Store) Purge(ctx context.Context, now time.Time, batch int) (PurgeStats, error) {
	if batch <= 0 {
		batch = DefaultPurgeBatch
	}
	now = now.UTC()
	var st PurgeStats
	tenants, err := s.Tenants(ctx)
	if err != nil {
		return st, err
	}
	for _, t := range tenants {
		cutoff := now.AddDate(0, 0, -t.Settings.WithDefaults().RetentionDays).UnixMilli()
		if err := s.purgeMessages(ctx, &st, batch, t.ID, cutoff); err != nil {
			return st, fmt.Errorf("purge messages of %s: %w", t.ID, err)
		}
		if err := s.purgeByKey(ctx, &st, &st.Events, batch,
			"SELECT pk FROM events WHERE tenant_id = ? AND ts < ? ORDER BY ts",
			"DELETE FROM events WHERE tenant_id = ? AND ts < ? AND pk", t.ID, cutoff); err != nil {
			return st, fmt.Errorf("purge events of %s: %w", t.ID, err)
		}
		st.Tenants++
	}
	if err := s.purgeTokens(ctx, &st, batch, now.Add(-s.TokenGrace)); err != nil {
		return st, err
	}
	if err := s.purgeRevocations(ctx, now); err != nil {
		return st, err
	}
	if err := s.purgeDeliveries(ctx, now); err != nil {
		return st, err
	}
	// Sanctions are few: one statement selects and deletes each batch.
	for {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("purge sanctions: %w", err)
		}
		res, err := s.db.ExecContext(ctx,
			"DELETE FROM sanctions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", now, batch)
		if err != nil {
			return st, dbError("purge sanctions", err)
		}
		st.Statements++
		n, err := affected(res, "purge sanctions")
		if err != nil {
			return st, err
		}
		st.Sanctions += n
		if n < int64(batch) {
			return st, nil
		}
	}
}

// purgeMessages deletes the tenant's messages older than cutoff (Unix
// milliseconds) in batches, each with its search index rows, in one
// transaction a batch.
func (s *Store) purgeMessages(ctx context.Context, st *PurgeStats, batch int, tenant kaiwa.TenantID, cutoff int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := s.purgeMessageBatch(ctx, st, batch, tenant, cutoff)
		if err != nil {
			return err
		}
		if n < batch {
			return nil
		}
	}
}

// purgeMessageBatch deletes up to batch of the tenant's messages older
// than cutoff and their index rows, and returns how many it selected.
func (s *Store) purgeMessageBatch(ctx context.Context, st *PurgeStats, batch int, tenant kaiwa.TenantID, cutoff int64) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, dbError("purge messages", err)
	}
	defer rollback(tx)
	rows, err := tx.QueryContext(ctx,
		"SELECT pk, text FROM messages WHERE tenant_id = ? AND ts < ? ORDER BY ts LIMIT ? FOR UPDATE", tenant, cutoff, batch)
	if err != nil {
		return 0, dbError("purge messages", err)
	}
	var (
		keys []any
		msgs []indexRow
	)
	for rows.Next() {
		var (
			pk   uint64
			text string
		)
		if err := rows.Scan(&pk, &text); err != nil {
			rows.Close()
			return 0, dbError("purge messages", err)
		}
		keys = append(keys, pk)
		if text != "" {
			msgs = append(msgs, indexRow{pk: pk, grams: grams(ngword.Normalize(text))})
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, dbError("purge messages", err)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM messages WHERE tenant_id = ? AND pk IN ("+placeholders(len(keys))+")",
		append([]any{tenant}, keys...)...)
	if err != nil {
		return 0, dbError("purge messages", err)
	}
	d, err := affected(res, "purge messages")
	if err != nil {
		return 0, err
	}
	last, err := indexedUpTo(ctx, tx)
	if err != nil {
		return 0, err
	}
	msgs = slices.DeleteFunc(msgs, func(m indexRow) bool { return m.pk > last })
	if err := deleteGrams(ctx, tx, tenant, msgs); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, dbError("purge messages", err)
	}
	st.Statements++
	st.Messages += d
	return len(keys), nil
}

// purgeByKey deletes rows in batches: sel (args, then ORDER BY, without
// LIMIT) selects up to batch keys, and del (the same args, ending with the
// key column) deletes those keys, repeating the condition so that a row
// changed in between is kept. It adds the deleted rows to *n.
func (s *Store) purgeByKey(ctx context.Context, st *PurgeStats, n *int64, batch int, sel, del string, args ...any) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		keys, err := s.selectKeys(ctx, sel+" LIMIT ?", append(args[:len(args):len(args)], batch)...)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		q := del + " IN (" + placeholders(len(keys)) + ")"
		res, err := s.db.ExecContext(ctx, q, append(args[:len(args):len(args)], keys...)...)
		if err != nil {
			return dbError("delete batch", err)
		}
		st.Statements++
		d, err := affected(res, "delete batch")
		if err != nil {
			return err
		}
		*n += d
		if len(keys) < batch {
			return nil
		}
	}
}

// selectKeys returns the unsigned keys a query selects.
func (s *Store) selectKeys(ctx context.Context, q string, args ...any) ([]any, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, dbError("select batch", err)
	}
	defer rows.Close()
	var keys []any
	for rows.Next() {
		var k uint64
		if err := rows.Scan(&k); err != nil {
			return nil, dbError("select batch", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("select batch", err)
	}
	return keys, nil
}

// purgeBatch bounds the rows one statement of [Store.PurgeTokens] deletes.
const purgeBatch = DefaultPurgeBatch

// PurgeTokens deletes, across all tenants, the tokens that expired before
// the given time, revoked or not, and returns how many, in batches like
// [Store.Purge] (which calls it with its [Store.TokenGrace]). Resolving
// such a token fails either way; a revoked token is purged once its
// lifetime (at most [kaiwa.MaxTokenTTL]) is over.
func (s *Store) PurgeTokens(ctx context.Context, before time.Time) (int, error) {
	var st PurgeStats
	err := s.purgeTokens(ctx, &st, purgeBatch, before)
	return int(st.Tokens), err
}

func (s *Store) purgeTokens(ctx context.Context, st *PurgeStats, batch int, before time.Time) error {
	if err := s.purgeByKey(ctx, st, &st.Tokens, batch,
		"SELECT id FROM user_tokens WHERE expires_at < ? ORDER BY expires_at",
		"DELETE FROM user_tokens WHERE expires_at < ? AND id", before.UTC()); err != nil {
		return fmt.Errorf("purge tokens: %w", err)
	}
	return nil
}
