package tenants

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/kaiwa-chat/kaiwa"
)

// The kinds of NG-list entries in the ng_words table.
const (
	ngWord  = "word"
	ngAllow = "allow"
)

// ngInsert adds NG-list entries, skipping those already there.
var ngInsert = bulkInsert{
	insert:  "INSERT INTO ng_words (tenant_id, kind, entry) VALUES ",
	ncols:   3,
	suffix:  " ON DUPLICATE KEY UPDATE entry = entry",
	maxRows: 2000,
	op:      "add ng words",
}

// ngWriteTx is how a change of an NG list runs: at READ COMMITTED, so
// that its scans of ng_words lock the tenant's rows only, not the gaps
// next to other tenants' (at REPEATABLE READ, two tenants changing their
// lists at once deadlocked on those gaps). The tenant's ng_lists row,
// locked first, still serialises the changes of one list.
var ngWriteTx = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// checkNGEntry validates one NG-list entry ([kaiwa.CheckNGWord]).
func checkNGEntry(w string) error {
	if err := kaiwa.CheckNGWord(w); err != nil {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "NG-list entry %q: %s", w, kaiwa.ErrorMessage(err))
	}
	return nil
}

// checkNGList validates a list given to [Store.PutNGList] or
// [Store.AddNGWords] and returns its words and allow-list sorted, each
// entry once.
func checkNGList(l kaiwa.NGList) (words, allow []string, err error) {
	if l.Policy != "" && l.Policy != kaiwa.NGReject && l.Policy != kaiwa.NGMask {
		return nil, nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "policy must be %q or %q", kaiwa.NGReject, kaiwa.NGMask)
	}
	if n := len(l.Words) + len(l.Allow); n > kaiwa.MaxNGWords {
		return nil, nil, errNGTooMany(n)
	}
	for _, list := range [][]string{l.Words, l.Allow} {
		for _, w := range list {
			if err := checkNGEntry(w); err != nil {
				return nil, nil, err
			}
		}
	}
	words = slices.Compact(slices.Sorted(slices.Values(l.Words)))
	allow = slices.Compact(slices.Sorted(slices.Values(l.Allow)))
	return words, allow, nil
}

func errNGTooMany(n int) error {
	return kaiwa.Errorf(kaiwa.CodeBadRequest, "an NG list holds at most %d entries (words and allow-list together), not %d", kaiwa.MaxNGWords, n)
}

// NGList returns the tenant's NG list: its words and allow-list, each in
// byte order, and the policy of its settings (defaults applied).
// [kaiwa.CodeNotFound] for an unknown tenant.
func (s *Store) NGList(ctx context.Context, tenant kaiwa.TenantID) (kaiwa.NGList, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.NGList{}, err
	}
	// One snapshot for the policy and the entries.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return kaiwa.NGList{}, dbError("read ng list", err)
	}
	defer rollback(tx)
	st, err := readSettings(ctx, tx, tenant)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	l, err := readNGList(ctx, tx, tenant)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	l.Policy = st.WithDefaults().NGPolicy
	if err := tx.Commit(); err != nil {
		return kaiwa.NGList{}, dbError("read ng list", err)
	}
	return l, nil
}

// readSettings reads the tenant's stored settings within tx.
func readSettings(ctx context.Context, tx *sql.Tx, tenant kaiwa.TenantID) (kaiwa.Settings, error) {
	var raw string
	err := tx.QueryRowContext(ctx, "SELECT settings FROM tenants WHERE id = ?", tenant).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return kaiwa.Settings{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", tenant)
	}
	if err != nil {
		return kaiwa.Settings{}, dbError("read tenant settings", err)
	}
	return decodeSettings(tenant, raw)
}

// readNGList reads the tenant's entries within tx; the caller sets the
// policy.
func readNGList(ctx context.Context, tx *sql.Tx, tenant kaiwa.TenantID) (kaiwa.NGList, error) {
	l := kaiwa.NGList{Words: []string{}, Allow: []string{}}
	rows, err := tx.QueryContext(ctx,
		"SELECT kind, entry FROM ng_words WHERE tenant_id = ? ORDER BY kind, entry", tenant)
	if err != nil {
		return kaiwa.NGList{}, dbError("read ng list", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, entry string
		if err := rows.Scan(&kind, &entry); err != nil {
			return kaiwa.NGList{}, dbError("read ng list", err)
		}
		if kind == ngAllow {
			l.Allow = append(l.Allow, entry)
		} else {
			l.Words = append(l.Words, entry)
		}
	}
	if err := rows.Err(); err != nil {
		return kaiwa.NGList{}, dbError("read ng list", err)
	}
	return l, nil
}

// PutNGList replaces the tenant's words and allow-list with l's, and its
// policy (in the tenant's settings) when l.Policy is not empty, in one
// transaction, and returns the list now stored. Entries are stored exactly
// as given, each once. [kaiwa.CodeBadRequest] for an invalid entry or
// policy or more than [kaiwa.MaxNGWords] entries, [kaiwa.CodeNotFound] for
// an unknown tenant.
func (s *Store) PutNGList(ctx context.Context, tenant kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	return s.changeNGList(ctx, tenant, l, true)
}

// AddNGWords adds l's words and allow-list entries to the tenant's, and
// sets its policy when l.Policy is not empty, in one transaction, and
// returns the list now stored. Entries already present are kept once.
// Errors as for [Store.PutNGList]; the limit applies to the list after the
// addition.
func (s *Store) AddNGWords(ctx context.Context, tenant kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	return s.changeNGList(ctx, tenant, l, false)
}

func (s *Store) changeNGList(ctx context.Context, tenant kaiwa.TenantID, l kaiwa.NGList, replace bool) (kaiwa.NGList, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.NGList{}, err
	}
	words, allow, err := checkNGList(l)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	tx, err := s.db.BeginTx(ctx, ngWriteTx)
	if err != nil {
		return kaiwa.NGList{}, dbError("change ng list", err)
	}
	defer rollback(tx)
	// The tenant's ng_lists row, locked until the end, serialises changes
	// of its list, so that the limit holds under concurrent additions.
	_, err = tx.ExecContext(ctx, `
		INSERT INTO ng_lists (tenant_id, updated_at) VALUES (?, ?)
		ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at)`, tenant, s.clock())
	if mysqlErrno(err) == errNoReferencedRow {
		return kaiwa.NGList{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", tenant)
	}
	if err != nil {
		return kaiwa.NGList{}, dbError("lock ng list", err)
	}
	if replace {
		if _, err := tx.ExecContext(ctx, "DELETE FROM ng_words WHERE tenant_id = ?", tenant); err != nil {
			return kaiwa.NGList{}, dbError("clear ng list", err)
		}
	}
	n := len(words) + len(allow)
	if err := ngInsert.run(ctx, tx, n, func(i int) (int, []any) {
		if i < len(words) {
			return 0, []any{tenant, ngWord, words[i]}
		}
		return 0, []any{tenant, ngAllow, allow[i-len(words)]}
	}); err != nil {
		return kaiwa.NGList{}, err
	}
	if !replace && n > 0 {
		var total int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM ng_words WHERE tenant_id = ?", tenant).Scan(&total); err != nil {
			return kaiwa.NGList{}, dbError("count ng list", err)
		}
		if total > kaiwa.MaxNGWords {
			return kaiwa.NGList{}, errNGTooMany(total)
		}
	}
	out, err := readNGList(ctx, tx, tenant)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	// The tenant's row is locked last and briefly, only when the policy is
	// set.
	var st kaiwa.Settings
	if l.Policy != "" {
		st, err = lockTenant(ctx, tx, tenant)
		if err != nil {
			return kaiwa.NGList{}, err
		}
		if st.NGPolicy != l.Policy {
			st.NGPolicy = l.Policy
			raw, err := encodeSettings(st)
			if err != nil {
				return kaiwa.NGList{}, err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE tenants SET settings = ? WHERE id = ?", raw, tenant); err != nil {
				return kaiwa.NGList{}, dbError("set ng policy", err)
			}
		}
	} else if st, err = readSettings(ctx, tx, tenant); err != nil {
		return kaiwa.NGList{}, err
	}
	out.Policy = st.WithDefaults().NGPolicy
	if err := tx.Commit(); err != nil {
		return kaiwa.NGList{}, dbError("change ng list", err)
	}
	return out, nil
}

// DeleteNGWord removes an entry from the tenant's words and allow-list
// (from both when it is in both) and returns the list now stored:
// [kaiwa.CodeNotFound] when it is in neither or the tenant is unknown.
func (s *Store) DeleteNGWord(ctx context.Context, tenant kaiwa.TenantID, word string) (kaiwa.NGList, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.NGList{}, err
	}
	if err := checkNGEntry(word); err != nil {
		return kaiwa.NGList{}, err
	}
	tx, err := s.db.BeginTx(ctx, ngWriteTx)
	if err != nil {
		return kaiwa.NGList{}, dbError("delete ng word", err)
	}
	defer rollback(tx)
	res, err := tx.ExecContext(ctx,
		"DELETE FROM ng_words WHERE tenant_id = ? AND kind IN (?, ?) AND entry = ?", tenant, ngWord, ngAllow, word)
	if err != nil {
		return kaiwa.NGList{}, dbError("delete ng word", err)
	}
	if n, err := affected(res, "delete ng word"); err != nil {
		return kaiwa.NGList{}, err
	} else if n == 0 {
		return kaiwa.NGList{}, kaiwa.Errorf(kaiwa.CodeNotFound, "%q is not on the NG list", word)
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE ng_lists SET updated_at = ? WHERE tenant_id = ?", s.clock(), tenant); err != nil {
		return kaiwa.NGList{}, dbError("delete ng word", err)
	}
	out, err := readNGList(ctx, tx, tenant)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	st, err := readSettings(ctx, tx, tenant)
	if err != nil {
		return kaiwa.NGList{}, err
	}
	out.Policy = st.WithDefaults().NGPolicy
	if err := tx.Commit(); err != nil {
		return kaiwa.NGList{}, dbError("delete ng word", err)
	}
	return out, nil
}
