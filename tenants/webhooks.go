package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/kaiwa-chat/kaiwa"
)

var _ kaiwa.WebhookStore = (*Store)(nil)

// PutWebhook adds a webhook of w.Tenant ([kaiwa.CodeConflict] when the
// tenant has [kaiwa.MaxWebhooks], [kaiwa.CodeNotFound] for an unknown
// tenant).
func (s *Store) PutWebhook(ctx context.Context, w kaiwa.Webhook) error {
	if err := checkTenant(w.Tenant); err != nil {
		return err
	}
	events, err := json.Marshal(w.Events)
	if err != nil {
		return fmt.Errorf("encode webhook events: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError("add webhook", err)
	}
	defer rollback(tx)
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM webhooks WHERE tenant_id = ? FOR UPDATE", w.Tenant).Scan(&n); err != nil {
		return dbError("add webhook", err)
	}
	if n >= kaiwa.MaxWebhooks {
		return kaiwa.Errorf(kaiwa.CodeConflict, "a tenant has at most %d webhooks: delete one first", kaiwa.MaxWebhooks)
	}
	created := w.CreatedAt
	if created.IsZero() {
		created = s.clock()
	}
	_, err = tx.ExecContext(ctx,
		"INSERT INTO webhooks (tenant_id, id, url, secret, events, created_at) VALUES (?, ?, ?, ?, ?, ?)",
		w.Tenant, w.ID, w.URL, w.Secret, string(events), nullTime(created))
	switch mysqlErrno(err) {
	case errDupEntry:
		return kaiwa.Errorf(kaiwa.CodeConflict, "webhook %s already exists", w.ID)
	case errNoReferencedRow:
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no tenant %s", w.Tenant)
	}
	if err != nil {
		return dbError("add webhook", err)
	}
	if err := tx.Commit(); err != nil {
		return dbError("add webhook", err)
	}
	return nil
}

// Webhooks lists the tenant's webhooks by creation.
func (s *Store) Webhooks(ctx context.Context, t kaiwa.TenantID) ([]kaiwa.Webhook, error) {
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	return s.webhooks(ctx, "WHERE tenant_id = ?", t)
}

// AllWebhooks lists every tenant's webhooks.
func (s *Store) AllWebhooks(ctx context.Context) ([]kaiwa.Webhook, error) {
	return s.webhooks(ctx, "")
}

func (s *Store) webhooks(ctx context.Context, where string, args ...any) ([]kaiwa.Webhook, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT tenant_id, id, url, secret, events, created_at FROM webhooks "+where+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, dbError("list webhooks", err)
	}
	defer rows.Close()
	out := []kaiwa.Webhook{}
	for rows.Next() {
		var w kaiwa.Webhook
		var events string
		if err := rows.Scan(&w.Tenant, &w.ID, &w.URL, &w.Secret, &events, &w.CreatedAt); err != nil {
			return nil, dbError("list webhooks", err)
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return nil, fmt.Errorf("decode webhook events: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("list webhooks", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook and its deliveries' record
// ([kaiwa.CodeNotFound] if the tenant has no such webhook).
func (s *Store) DeleteWebhook(ctx context.Context, t kaiwa.TenantID, id string) error {
	if err := checkTenant(t); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, "DELETE FROM webhooks WHERE tenant_id = ? AND id = ?", t, id)
	if err != nil {
		return dbError("delete webhook", err)
	}
	if n, err := affected(res, "delete webhook"); err != nil {
		return err
	} else if n == 0 {
		return kaiwa.Errorf(kaiwa.CodeNotFound, "no webhook %s", id)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM webhook_deliveries WHERE tenant_id = ? AND webhook_id = ?", t, id); err != nil {
		return dbError("delete webhook deliveries", err)
	}
	return nil
}

// RecordDelivery records one delivery attempt.
func (s *Store) RecordDelivery(ctx context.Context, d kaiwa.WebhookDelivery) error {
	errText := d.Error
	for len(errText) > 300 || !utf8.ValidString(errText) {
		errText = errText[:min(len(errText), 300)-1]
	}
	at := d.At
	if at.IsZero() {
		at = s.clock()
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO webhook_deliveries (tenant_id, webhook_id, delivery_id, type, attempt, status, error, latency_ms, final, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Tenant, d.Webhook, d.ID, d.Type, d.Attempt, d.Status, errText, max(d.Latency, 0), d.Final, nullTime(at))
	if err != nil {
		return dbError("record delivery", err)
	}
	return nil
}

// Deliveries returns a webhook's latest attempts, newest first.
func (s *Store) Deliveries(ctx context.Context, t kaiwa.TenantID, id string, limit int) ([]kaiwa.WebhookDelivery, error) {
	if err := checkTenant(t); err != nil {
		return nil, err
	}
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM webhooks WHERE tenant_id = ? AND id = ?", t, id).Scan(&one)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, kaiwa.Errorf(kaiwa.CodeNotFound, "no webhook %s", id)
		}
		return nil, dbError("read deliveries", err)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT delivery_id, type, attempt, status, error, latency_ms, final, at FROM webhook_deliveries
		WHERE tenant_id = ? AND webhook_id = ? ORDER BY pk DESC LIMIT ?`, t, id, limit)
	if err != nil {
		return nil, dbError("read deliveries", err)
	}
	defer rows.Close()
	out := []kaiwa.WebhookDelivery{}
	for rows.Next() {
		d := kaiwa.WebhookDelivery{Tenant: t, Webhook: id}
		if err := rows.Scan(&d.ID, &d.Type, &d.Attempt, &d.Status, &d.Error, &d.Latency, &d.Final, &d.At); err != nil {
			return nil, dbError("read deliveries", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("read deliveries", err)
	}
	return out, nil
}

// DeliveryRetention is how long delivery attempts are kept.
const DeliveryRetention = 7 * 24 * time.Hour

// purgeDeliveries deletes delivery records older than [DeliveryRetention].
func (s *Store) purgeDeliveries(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM webhook_deliveries WHERE at < ? LIMIT 10000", now.Add(-DeliveryRetention)); err != nil {
		return dbError("purge deliveries", err)
	}
	return nil
}
