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

// checkEvent validates an event for the log.
func checkEvent(e *kaiwa.Event) error {
	switch {
	case !kaiwa.ValidID(string(e.Tenant)):
		return errors.New("invalid tenant id")
	case !validLogID(e.ID):
		return errors.New("invalid event id")
	case !validLogID(e.Type):
		return errors.New("invalid event type")
	case e.User != "" && !kaiwa.ValidID(e.User):
		return errors.New("invalid user id")
	case e.Channel != "" && !validLogChannel(e.Channel):
		return errors.New("invalid channel name")
	case len(e.Detail) > 0 && (!utf8.Valid(e.Detail) || !json.Valid(e.Detail)):
		return errors.New("detail is not valid JSON")
	}
	return nil
}

// AppendEvents stores events (ID and Tenant set), which may belong to
// several tenants, with one multi-row INSERT per up to 500 events. It is
// idempotent by (tenant, id). Like [Store.AppendMessages], it skips invalid
// events, stores the rest and names the skipped ones in a
// [kaiwa.CodeBadRequest] error.
func (s *Store) AppendEvents(ctx context.Context, events []kaiwa.Event) error {
	var skipped []string
	valid := make([]*kaiwa.Event, 0, len(events))
	for i := range events {
		if err := checkEvent(&events[i]); err != nil {
			skipped = append(skipped, fmt.Sprintf("event %d (%q): %v", i, events[i].ID, err))
			continue
		}
		valid = append(valid, &events[i])
	}
	err := logInsert("events", "(tenant_id, id, type, user_id, channel, detail, ts)", 7).
		run(ctx, s.db, len(valid), func(i int) (int, []any) {
			e := valid[i]
			return len(e.Detail) + 256, []any{e.Tenant, e.ID, e.Type, e.User, e.Channel, nullRaw(e.Detail), e.TS}
		})
	if err != nil {
		return err
	}
	return skippedError(skipped)
}

// eventPlace is an event's place in the log's order.
type eventPlace struct {
	ts int64
	pk uint64
}

// checkEventQuery validates the filters of an event query.
func checkEventQuery(q kaiwa.EventQuery) error {
	if q.Type != "" && !validLogID(q.Type) {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid event type")
	}
	if q.User != "" {
		if err := kaiwa.CheckID("user", q.User); err != nil {
			return err
		}
	}
	if q.Channel != "" {
		if err := kaiwa.CheckChannel(q.Channel); err != nil {
			return err
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "until is before since")
	}
	return nil
}

// eventsSQL returns the query of one page of at most limit events (limit+1
// rows, to tell whether more follow), newest first; before, when not nil,
// is the place of the cursor.
func eventsSQL(tenant kaiwa.TenantID, q kaiwa.EventQuery, before *eventPlace, limit int) (string, []any) {
	where := []string{"tenant_id = ?"}
	args := []any{tenant}
	if q.Type != "" {
		where, args = append(where, "type = ?"), append(args, q.Type)
	}
	if q.User != "" {
		where, args = append(where, "user_id = ?"), append(args, q.User)
	}
	if q.Channel != "" {
		where, args = append(where, "channel = ?"), append(args, q.Channel)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "ts < ?"), append(args, q.Until.UnixMilli())
	}
	if p := before; p != nil {
		where, args = append(where, "ts <= ? AND (ts < ? OR pk < ?)"), append(args, p.ts, p.ts, p.pk)
	}
	return `SELECT id, type, user_id, channel, detail, ts
		FROM events WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY ts DESC, pk DESC LIMIT ?`, append(args, limit+1)
}

// Events returns one page of a tenant's event log, newest first (by ts,
// then by arrival). Filters: q.Type, q.User, q.Channel, q.Since ≤ ts <
// q.Until, and q.Before, an event id of the same tenant (unknown:
// [kaiwa.CodeBadRequest]). q.Limit defaults to 50 and is clamped to 500.
// Next, when set, is the Before of the following page.
func (s *Store) Events(ctx context.Context, tenant kaiwa.TenantID, q kaiwa.EventQuery) (kaiwa.EventPage, error) {
	if err := checkTenant(tenant); err != nil {
		return kaiwa.EventPage{}, err
	}
	if err := checkEventQuery(q); err != nil {
		return kaiwa.EventPage{}, err
	}
	var before *eventPlace
	if q.Before != "" {
		if !validLogID(q.Before) {
			return kaiwa.EventPage{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "invalid before cursor")
		}
		var p eventPlace
		err := s.db.QueryRowContext(ctx,
			"SELECT ts, pk FROM events WHERE tenant_id = ? AND id = ?", tenant, q.Before).Scan(&p.ts, &p.pk)
		if errors.Is(err, sql.ErrNoRows) {
			return kaiwa.EventPage{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "unknown event id %q in before", q.Before)
		}
		if err != nil {
			return kaiwa.EventPage{}, dbError("resolve event cursor", err)
		}
		before = &p
	}
	limit := pageLimit(q.Limit)
	query, args := eventsSQL(tenant, q, before, limit)
	events, next, err := readPage(ctx, s.db, "read events", query, args, limit,
		func(rows *sql.Rows) (kaiwa.Event, error) {
			e := kaiwa.Event{Tenant: tenant}
			var detail sql.NullString
			err := rows.Scan(&e.ID, &e.Type, &e.User, &e.Channel, &detail, &e.TS)
			if detail.Valid {
				e.Detail = json.RawMessage(detail.String)
			}
			return e, err
		}, func(e kaiwa.Event) string { return e.ID })
	if err != nil {
		return kaiwa.EventPage{}, err
	}
	return kaiwa.EventPage{Events: events, Next: next}, nil
}
