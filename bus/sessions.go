package bus

import (
	"context"
	"errors"
	"sync"

	"github.com/kaiwa-chat/kaiwa"
)

// A UA's new sessions ask the API tier for their lookups in batches too:
// whatever lookups of a tenant wait while sessionsInFlight batches of it
// are being answered go together in one request (opSessions), so that a
// storm of reconnects costs NATS and the API one request per batch, not
// one per connection. A lone lookup goes at once, as opSession. An API
// tier of the earlier release, which serves no opSessions, is asked one
// lookup at a time.

// sessionsInFlight is how many batches of one tenant's session lookups a
// process asks at once.
const sessionsInFlight = 2

// errNoAPI is call's error when no API process serves the operation.
var errNoAPI = kaiwa.Errorf(kaiwa.CodeUnavailable, "no API server is answering; try again")

// sessionQueue gathers a process's session lookups into batches, per
// tenant.
type sessionQueue struct {
	mu      sync.Mutex
	waiting map[kaiwa.TenantID][]*sessionWait
	flying  map[kaiwa.TenantID]int
}

// sessionWait is a session lookup waiting for its answer.
type sessionWait struct {
	req  sessionRequest
	done chan sessionResult // buffered: the batch never waits for its caller
}

// sessionResult is a session lookup's answer, or why there is none.
type sessionResult struct {
	rep sessionReply
	err error
}

// resolve asks for req's session in the next batch of tenant t.
func (q *sessionQueue) resolve(ctx context.Context, b *Bus, t kaiwa.TenantID, req sessionRequest) (sessionReply, error) {
	w := &sessionWait{req: req, done: make(chan sessionResult, 1)}
	q.mu.Lock()
	if q.waiting == nil {
		q.waiting, q.flying = map[kaiwa.TenantID][]*sessionWait{}, map[kaiwa.TenantID]int{}
	}
	q.waiting[t] = append(q.waiting[t], w)
	var batch []*sessionWait
	if q.flying[t] < sessionsInFlight {
		batch = q.takeLocked(t)
		q.flying[t]++
	}
	q.mu.Unlock()
	if batch != nil {
		// This lookup starts a flight: it asks its batch itself (most
		// often itself alone), and a goroutine asks what gathered meanwhile.
		askCtx := ctx
		if len(batch) > 1 {
			askCtx = context.Background() // others' lookups ride on this request
		}
		q.ask(askCtx, b, t, batch)
		q.landed(b, t)
	}
	select {
	case r := <-w.done:
		return r.rep, r.err
	case <-ctx.Done():
		return sessionReply{}, unavailable("directory session request", ctx.Err())
	}
}

// takeLocked takes the next batch of tenant t's waiting lookups. Call
// with mu held.
func (q *sessionQueue) takeLocked(t kaiwa.TenantID) []*sessionWait {
	all := q.waiting[t]
	n := min(len(all), maxBatch)
	batch := all[:n:n]
	if n == len(all) {
		delete(q.waiting, t)
	} else {
		q.waiting[t] = all[n:]
	}
	return batch
}

// landed ends a flight: a goroutine flies on with the lookups that
// gathered meanwhile, if any.
func (q *sessionQueue) landed(b *Bus, t kaiwa.TenantID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting[t]) == 0 {
		if q.flying[t]--; q.flying[t] == 0 {
			delete(q.flying, t)
		}
		return
	}
	go q.fly(b, t, q.takeLocked(t))
}

// fly asks batch on a goroutine of its own, then lands.
func (q *sessionQueue) fly(b *Bus, t kaiwa.TenantID, batch []*sessionWait) {
	q.ask(context.Background(), b, t, batch)
	q.landed(b, t)
}

// ask answers one batch: alone as opSession, together as opSessions, and
// one by one when no API process serves opSessions.
func (q *sessionQueue) ask(ctx context.Context, b *Bus, t kaiwa.TenantID, batch []*sessionWait) {
	if len(batch) > 1 {
		req := sessionsRequest{Sessions: make([]sessionRequest, len(batch))}
		for i, w := range batch {
			req.Sessions[i] = w.req
		}
		rep, err := call(ctx, b, t, opSessions, req)
		switch {
		case errors.Is(err, errNoAPI):
			// An API tier of the earlier release: one by one, below.
		case err == nil && len(rep.Sessions) != len(batch):
			err = kaiwa.Errorf(kaiwa.CodeUnavailable, "directory sessions reply with %d answers for %d lookups", len(rep.Sessions), len(batch))
			fallthrough
		default:
			for i, w := range batch {
				r := sessionResult{err: err}
				if err == nil {
					r.rep = rep.Sessions[i].sessionReply
					if e := rep.Sessions[i].Error; e != nil {
						r.err = &kaiwa.Error{Code: e.Code, Message: e.Message}
					}
				}
				w.done <- r
			}
			return
		}
	}
	if len(batch) == 1 {
		rep, err := call(ctx, b, t, opSession, batch[0].req)
		batch[0].done <- sessionResult{rep: rep, err: err}
		return
	}
	var wg sync.WaitGroup
	for _, w := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := call(ctx, b, t, opSession, w.req)
			w.done <- sessionResult{rep: rep, err: err}
		}()
	}
	wg.Wait()
}

// The batch of session lookups on the wire.
type (
	// sessionsRequest asks the sessions of several tokens of the subject's
	// tenant at once, each as a sessionRequest would.
	sessionsRequest struct {
		Sessions []sessionRequest `json:"sessions"`
	}
	// sessionsReply answers each of a sessionsRequest's lookups, in order.
	sessionsReply struct {
		Sessions []sessionsItem `json:"sessions"`
	}
	// sessionsItem is one lookup's answer: the session, or the refusal of
	// that lookup alone.
	sessionsItem struct {
		sessionReply
		Error *wireError `json:"error,omitempty"`
	}
)

// sessionsOp answers a batch of session lookups, each as
// [dirServer.session] would answer it alone.
func (s *dirServer) sessionsOp(ctx context.Context, t kaiwa.TenantID, r sessionsRequest) (sessionsReply, error) {
	if len(r.Sessions) == 0 || len(r.Sessions) > maxBatch {
		return sessionsReply{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "a batch of session lookups holds 1 to %d", maxBatch)
	}
	out := sessionsReply{Sessions: make([]sessionsItem, len(r.Sessions))}
	asks := make([]sessionAsk, 0, len(r.Sessions))
	from := make([]int, 0, len(r.Sessions)) // index in r.Sessions of each of asks
	for i, req := range r.Sessions {
		if err := checkTokenTenant(t, req.Token); err != nil {
			out.Sessions[i].Error = refusal(err).Error
			continue
		}
		asks = append(asks, sessionAsk{tenant: t, token: req.Token, player: req.Player})
		from = append(from, i)
	}
	for j, a := range s.sessions.doAll(ctx, asks) {
		rep, err := sessionOf(t, a)
		if err != nil {
			out.Sessions[from[j]].Error = refusal(err).Error
			continue
		}
		out.Sessions[from[j]].sessionReply = rep
	}
	return out, nil
}
