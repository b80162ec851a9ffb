package bus

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/kaiwa-chat/kaiwa"
)

// The UAs enforce per-user and per-tenant message rates together: each
// tells the others, every tick, how many messages it admitted per key
// since the last, on P.T.rl (core NATS; a lost report makes the limit
// looser by that report for one window, never stricter).

// rateReport is one UA's admissions of a tenant since its last report:
// key "" is the tenant's total, other keys are users.
type rateReport struct {
	From   string         `json:"from"`
	Counts map[string]int `json:"counts"`
}

func (s subjects) rl(t kaiwa.TenantID) string { return s.tenant(t) + ".rl" }

// PublishCounts tells the other UAs what UA from admitted of tenant t.
func (b *Bus) PublishCounts(t kaiwa.TenantID, from string, counts map[string]int) error {
	data, err := json.Marshal(rateReport{From: from, Counts: counts})
	if err != nil {
		return err
	}
	if err := b.nc.Publish(b.subj.rl(t), data); err != nil {
		return unavailable("publish counts", err)
	}
	return nil
}

// SubscribeCounts delivers every UA's reports of every tenant to f, from
// NATS's own goroutine (f must be quick).
func (b *Bus) SubscribeCounts(f func(t kaiwa.TenantID, from string, counts map[string]int)) (kaiwa.Subscription, error) {
	sub, err := b.nc.Subscribe(b.subj.p+".*.rl", func(m *nats.Msg) {
		t, _, ok := b.subj.parseTenant(m.Subject)
		if !ok {
			return
		}
		var r rateReport
		if json.Unmarshal(m.Data, &r) == nil {
			f(t, r.From, r.Counts)
		}
	})
	if err != nil {
		return nil, unavailable("subscribe counts", err)
	}
	g := &group{b: b, subs: []*nats.Subscription{sub}}
	if err := b.flush(); err != nil {
		_ = g.Unsubscribe()
		return nil, unavailable("subscribe counts", err)
	}
	return g, nil
}
