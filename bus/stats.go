package bus

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/stats"
	"github.com/nats-io/nats.go"
)

// opStats asks every process for its figures of a tenant: a scatter and
// gather on P.T.dir.stats, which every UA and API process (and every log
// writer of its own) answers, outside the directory's queue group.
const opStats dirOp[statsRequest, stats.Report] = "stats"

// statsRequest asks a process for its figures of the subject's tenant.
type statsRequest struct{}

// DefaultStatsWait is how long a stats request gathers answers.
const DefaultStatsWait = 300 * time.Millisecond

// ServeStats answers every stats request with this process's figures
// ([Bus.Stats]), naming the kind of process ("ua", "api", "logwriter"),
// until the subscription is ended.
func (b *Bus) ServeStats(process string) (kaiwa.Subscription, error) {
	s := &dirServer{b: b}
	p := s.pool(2)
	p.queue = "" // every process answers
	serve(p, opStats, func(_ context.Context, t kaiwa.TenantID, _ statsRequest) (stats.Report, error) {
		return b.book.Report(t, process), nil
	})
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// TenantStats implements [kaiwa.StatsSource]: it asks every process for
// its figures of tenant t and adds up the answers that arrive within the
// bus's StatsWait (or by ctx's deadline, when sooner).
func (b *Bus) TenantStats(ctx context.Context, t kaiwa.TenantID) (kaiwa.TenantStats, error) {
	reports, err := gather(ctx, b, t, opStats, statsRequest{}, b.cfg.StatsWait)
	if err != nil {
		return kaiwa.TenantStats{}, err
	}
	return stats.Merge(t, reports, time.Now()), nil
}

// gather asks operation op of every process serving it for tenant t,
// and returns the answers that arrived within wait (or by ctx's
// deadline). Refusals and undecodable answers are left out; with no
// answer at all the error is [kaiwa.CodeUnavailable].
func gather[Req, Resp any](ctx context.Context, b *Bus, t kaiwa.TenantID, op dirOp[Req, Resp], req Req, wait time.Duration) ([]Resp, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	inbox := b.nc.NewRespInbox()
	replies := make(chan *nats.Msg, 256)
	sub, err := b.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, unavailable("gather "+string(op), err)
	}
	defer sub.Unsubscribe()
	if err := b.nc.PublishRequest(b.subj.dir(t, string(op)), inbox, data); err != nil {
		return nil, unavailable("gather "+string(op), err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var out []Resp
	for {
		select {
		case m := <-replies:
			var refused dirRefusal
			if json.Unmarshal(m.Data, &refused) != nil || refused.Error != nil {
				continue
			}
			var rep Resp
			if json.Unmarshal(m.Data, &rep) == nil {
				out = append(out, rep)
			}
		case <-timer.C:
			return answered(op, out)
		case <-ctx.Done():
			return answered(op, out)
		}
	}
}

// answered returns what a gather collected, or unavailable when nothing.
func answered[Req, Resp any](op dirOp[Req, Resp], out []Resp) ([]Resp, error) {
	if len(out) == 0 {
		return nil, kaiwa.Errorf(kaiwa.CodeUnavailable, "no process answered the %s request; try again", op)
	}
	return out, nil
}
