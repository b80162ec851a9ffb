package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
)

// maxErrorKinds bounds the distinct error messages a worker keeps.
const maxErrorKinds = 16

// errorCounts counts errors by message, keeping a bounded number of
// distinct ones. It is safe for concurrent use.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (e *errorCounts) add(err error) {
	msg := errorKind(err)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = make(map[string]int)
	}
	if _, ok := e.m[msg]; !ok && len(e.m) >= maxErrorKinds {
		msg = "other"
	}
	e.m[msg]++
}

func (e *errorCounts) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// errorKind shortens an error to what tells failures apart: the code of a
// *kaiwa.Error, the close status of a server close, or the message
// without addresses and ports.
func errorKind(err error) string {
	var ke *kaiwa.Error
	if errors.As(err, &ke) {
		return string(ke.Code)
	}
	var ce *client.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d %s", ce.Code, ce.Reason)
	}
	var pe *postError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, client.ErrSlowReader):
		return "slow reader (load tool)"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// session is one connection of a benchmark client. A client has a new
// session after each reconnect.
type session struct {
	c    *client.Conn
	nc   net.Conn
	done chan struct{} // closed when its reader has stopped
	// ending marks a session the load tool itself closes or drops.
	ending atomic.Bool
}

// drop ends the session abruptly, as a network failure would: its TCP
// connection closes without a WebSocket closing handshake.
func (s *session) drop() {
	if s.nc != nil {
		_ = s.nc.Close()
		return
	}
	_ = s.c.Close() // no TCP connection was recorded: close politely
}

// benchConn is one benchmark client.
type benchConn struct {
	plan PlanConn
	rcv  *Receiver
	sess atomic.Pointer[session]
}

// worker runs one [Plan]: it connects the plan's clients, publishes,
// receives and counts.
type worker struct {
	plan   Plan
	dialer *Dialer
	conns  []*benchConn
	ledger *Ledger
	// poster posts the messages of [PublishAPI] publishers (nil with
	// [PublishWS]).
	poster *apiPoster

	// windows is the number of measurement windows; the ledger holds
	// NumPubs publishers per window (the publisher ids of window k are
	// k*NumPubs onwards), so a late message of one window never counts in
	// another.
	windows int
	cur     atomic.Int64 // the current window

	// At the start of the current window: own CPU, and the cumulative
	// counters reported per window.
	cpu0      time.Duration
	dupsAt    uint64
	foreignAt uint64
	otherAt   uint64
	droppedAt int64

	connectLat Histogram
	latency    []Histogram     // per window
	ack        []Histogram     // per window
	delivered  []atomic.Uint64 // first deliveries, per window
	lateness   []atomic.Int64  // per window
	reconnect  Histogram

	phase        atomic.Value // string
	connected    atomic.Int64
	failed       atomic.Int64
	firstDial    atomic.Int64 // unix nanos
	lastReady    atomic.Int64
	other        atomic.Uint64
	resumed      atomic.Uint64 // "resumed" events (v2), and those not recovered
	notRecovered atomic.Uint64
	lastDelivery atomic.Int64
	dropped      atomic.Int64
	connectErrs  errorCounts
	dropErrs     errorCounts
	stormErrs    errorCounts

	pubMu   sync.Mutex
	pubErrs []map[string]uint64 // per window
	sent    atomic.Uint64
	errs    atomic.Uint64
}

func newWorker(p Plan) (*worker, error) {
	var srcs []netip.Addr
	for _, s := range p.Sources {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("source address %q: %w", s, err)
		}
		srcs = append(srcs, a)
	}
	if len(p.URLs) == 0 {
		return nil, errors.New("the plan names no URL")
	}
	windows := max(len(p.PubRates), 1)
	w := &worker{
		plan:      p,
		dialer:    NewDialer(p.URLs, DialerOptions{Sources: srcs, Insecure: p.Insecure, EventBuffer: p.EventBuffer}),
		ledger:    NewLedger(p.NumPubs*windows, p.Seqs),
		windows:   windows,
		latency:   make([]Histogram, windows),
		ack:       make([]Histogram, windows),
		delivered: make([]atomic.Uint64, windows),
		lateness:  make([]atomic.Int64, windows),
		pubErrs:   make([]map[string]uint64, windows),
	}
	for k := range w.pubErrs {
		w.pubErrs[k] = make(map[string]uint64)
	}
	if p.PublishVia == PublishAPI {
		if p.API == nil {
			return nil, errors.New("the plan publishes through the API and names none")
		}
		w.poster = newAPIPoster(*p.API, p.Insecure)
	}
	w.phase.Store("connect")
	w.conns = make([]*benchConn, len(p.Conns))
	for i, pc := range p.Conns {
		w.conns[i] = &benchConn{plan: pc, rcv: w.ledger.NewReceiver()}
	}
	return w, nil
}

// progress returns the worker's running counts.
func (w *worker) progress() Progress {
	k := w.cur.Load()
	var delivered uint64
	for i := range w.delivered {
		delivered += w.delivered[i].Load()
	}
	return Progress{
		Phase:     w.phase.Load().(string),
		Window:    int(k),
		Connected: int(w.connected.Load()),
		Failed:    int(w.failed.Load()),
		Sent:      w.sent.Load(),
		Delivered: delivered,
		Errors:    w.errs.Load(),
		Dropped:   int(w.dropped.Load()),
		P50:       w.latency[k].Quantile(0.50),
		P99:       w.latency[k].Quantile(0.99),
	}
}

// connect connects every client of the plan, at most ConnectConcurrency
// at a time (and ConnectRate per second when set).
func (w *worker) connect(ctx context.Context) ConnectStats {
	conc := max(w.plan.ConnectConcurrency, 1)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var pacer *Pacer
	if w.plan.ConnectRate > 0 {
		pacer = NewPacer(time.Now(), w.plan.ConnectRate, int64(len(w.conns)))
	}
	w.firstDial.Store(time.Now().UnixNano())
	for _, bc := range w.conns {
		if pacer != nil {
			if _, _, ok := pacer.Next(ctx, w.plan.Deadline); !ok {
				break
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			if err := w.dial(ctx, bc, nil); err != nil {
				w.failed.Add(1)
				w.connectErrs.add(err)
				return
			}
			w.connectLat.Record(time.Since(t0))
			w.connected.Add(1)
			storeMax(&w.lastReady, time.Now().UnixNano())
		}()
	}
	wg.Wait()
	st := ConnectStats{
		Connected: int(w.connected.Load()),
		Failed:    len(w.conns) - int(w.connected.Load()),
		First:     time.Unix(0, w.firstDial.Load()),
		Latency:   &w.connectLat,
		Errors:    w.connectErrs.snapshot(),
	}
	if l := w.lastReady.Load(); l > 0 {
		st.Last = time.Unix(0, l)
	}
	w.failed.Store(int64(st.Failed))
	return st
}

// dial connects one client, joins its group when needed, and starts its
// reader.
func (w *worker) dial(ctx context.Context, bc *benchConn, resume map[string]uint64) error {
	dctx, cancel := context.WithTimeout(ctx, w.plan.ConnectTimeout)
	defer cancel()
	c, nc, err := w.dialer.Dial(dctx, bc.plan.Index, bc.plan.Token, resume, func(m client.RawMsg) { w.deliver(bc, m.Data) })
	if err != nil {
		return err
	}
	if g := bc.plan.Group; g >= 0 && w.plan.Join && g < len(w.plan.Groups) {
		if ch := w.plan.Groups[g]; !slices.Contains(c.Ready().Channels, ch) {
			if err := c.Join(dctx, ch); err != nil {
				_ = c.Close()
				return fmt.Errorf("join: %w", err)
			}
		}
	}
	s := &session{c: c, nc: nc, done: make(chan struct{})}
	bc.sess.Store(s)
	go w.read(s)
	return nil
}

// deliver counts one message a client received, given its data, on the
// client's reader goroutine ([client.Options.OnMessage]): it must not
// block. The sessions of one client never deliver at the same time (see
// [worker.storm]), so its receiver has one goroutine at a time.
func (w *worker) deliver(bc *benchConn, data []byte) {
	now := time.Now().UnixNano()
	p, err := ParsePayload(data)
	if err != nil {
		bc.rcv.foreign.Add(1)
		return
	}
	if bc.rcv.Deliver(p.P, p.N) {
		k := p.P / max(w.plan.NumPubs, 1) // Deliver checked p.P's range
		w.latency[k].Record(time.Duration(now - p.T))
		w.delivered[k].Add(1)
		w.lastDelivery.Store(now)
	}
}

// read is a session's event reader: messages go to [worker.deliver], so
// it counts the other events, and the session's end.
func (w *worker) read(s *session) {
	defer close(s.done)
	for ev := range s.c.Events() {
		w.other.Add(1)
		if ev.Op == "resumed" {
			w.resumed.Add(1)
			if !ev.Recovered {
				w.notRecovered.Add(1)
			}
		}
	}
	if !s.ending.Load() {
		w.dropped.Add(1)
		w.dropErrs.add(s.c.Err())
	}
}

// run measures the first part of a window: publishing until this
// worker's publishers have stopped (fanout, room, dm), holding until the
// window ends (idle), or dropping and reconnecting everyone (storm). The
// coordinator calls [worker.finish] once every worker has come this far.
func (w *worker) run(ctx context.Context, win Window) *WorkerResult {
	sleepUntil(ctx, win.Start)
	w.cur.Store(int64(min(max(win.Index, 0), w.windows-1)))
	w.cpu0 = SelfCPU()
	w.dupsAt, w.foreignAt = w.receiverCounts()
	w.otherAt = w.other.Load()
	w.droppedAt = w.dropped.Load()
	w.phase.Store("run")
	res := &WorkerResult{Active: w.active()}
	switch w.plan.Scenario {
	case ScenarioStorm:
		// With publishers, the drop comes a third into the window: v1
		// clients miss what is said while they are away, v2 clients
		// resume and get it replayed.
		var wg sync.WaitGroup
		drop := win.Start
		if len(w.plan.PubRates) > 0 {
			wg.Add(1)
			go func() { defer wg.Done(); w.publish(ctx, win) }()
			drop = win.Start.Add(win.End.Sub(win.Start) / 3)
		}
		sleepUntil(ctx, drop)
		w.storm(ctx, win, res)
		wg.Wait()
	case ScenarioIdle:
		sleepUntil(ctx, win.End)
	default:
		w.publish(ctx, win)
	}
	w.phase.Store("drain")
	return res
}

// active counts, per group, the clients connected now.
func (w *worker) active() []int {
	active := make([]int, w.plan.NumGroups)
	for _, bc := range w.conns {
		if g := bc.plan.Group; g >= 0 && g < len(active) && bc.sess.Load() != nil {
			active[g]++
		}
	}
	return active
}

// receiverCounts adds up the receivers' duplicates and foreign messages.
func (w *worker) receiverCounts() (dups, foreign uint64) {
	for _, bc := range w.conns {
		dups += bc.rcv.Dups()
		foreign += bc.rcv.Foreign()
	}
	return dups, foreign
}

// acked returns, per publisher of the run, how many of its messages of
// the current window the server acknowledged to this worker (zero for
// other workers' publishers). Call it once run has returned.
func (w *worker) acked() []uint64 {
	out := make([]uint64, w.plan.NumPubs)
	base := int(w.cur.Load()) * w.plan.NumPubs
	for _, pp := range w.plan.Pubs {
		if pp.ID >= 0 && pp.ID < len(out) {
			out[pp.ID] = w.ledger.AckedCount(base + pp.ID)
		}
	}
	return out
}

// finish waits for the last deliveries, once every publisher of the run
// has stopped (acked has every publisher's acknowledged messages), and
// completes the result.
func (w *worker) finish(ctx context.Context, res *WorkerResult, acked []uint64) WorkerResult {
	k := int(w.cur.Load())
	w.drain(ctx, k, acked, res.Active)
	res.CPU = SelfCPU() - w.cpu0
	res.End = time.Now()
	w.phase.Store("done")
	res.Tally = w.ledger.TallyRange(k*w.plan.NumPubs, w.plan.NumPubs)
	res.Latency, res.Ack = &w.latency[k], &w.ack[k]
	res.Delivered = w.delivered[k].Load()
	res.Other = w.other.Load() - w.otherAt
	dups, foreign := w.receiverCounts()
	res.Dups, res.Foreign = dups-w.dupsAt, foreign-w.foreignAt
	w.pubMu.Lock()
	if len(w.pubErrs[k]) > 0 {
		res.PublishErrors = make(map[string]uint64, len(w.pubErrs[k]))
		for code, n := range w.pubErrs[k] {
			res.PublishErrors[code] = n
		}
	}
	w.pubMu.Unlock()
	res.Lateness = time.Duration(w.lateness[k].Load())
	// Counted again now that the deliveries are in: a "resumed" follows
	// its replay, which may still be arriving when the last client is
	// back.
	res.Resumed, res.NotRecovered = w.resumed.Load(), w.notRecovered.Load()
	res.Dropped = int(w.dropped.Load() - w.droppedAt)
	res.DropReasons = w.dropErrs.snapshot()
	return *res
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// publish runs the plan's publishers from win.Start until win.End, at
// the window's rate.
func (w *worker) publish(ctx context.Context, win Window) {
	k := int(w.cur.Load())
	if k >= len(w.plan.PubRates) || w.plan.PubRates[k] <= 0 {
		return
	}
	rate := w.plan.PubRates[k]
	limit := min(int64(math.Ceil(rate*win.End.Sub(win.Start).Seconds()))+1, int64(w.plan.Seqs))
	if w.poster != nil {
		w.publishAPI(ctx, k, rate, limit, win)
		return
	}
	var wg sync.WaitGroup
	for _, pp := range w.plan.Pubs {
		if pp.Conn < 0 || pp.Conn >= len(w.conns) {
			continue
		}
		bc := w.conns[pp.Conn]
		if bc.sess.Load() == nil {
			continue // never connected: its messages are simply not sent
		}
		offset := pubOffset(pp.ID, w.plan.NumPubs, rate)
		ch := ""
		if g := bc.plan.Group; g >= 0 && g < len(w.plan.Groups) {
			ch = w.plan.Groups[g]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.publisher(ctx, k, pp, bc, ch, NewPacer(win.Start.Add(offset), rate, limit), win.End)
		}()
	}
	wg.Wait()
}

// pubOffset returns when publisher id of pubs, each at rate, sends its
// first message after the window's start: the publishers' first sends
// spread over one interval so that they do not all fire at once.
func pubOffset(id, pubs int, rate float64) time.Duration {
	return time.Duration(float64(id) / float64(max(pubs, 1)) / rate * float64(time.Second))
}

// publisher sends one publisher's messages on schedule.
// Each message goes out on the client's session of the moment; while the
// client is away (a storm) its messages are not sent.
func (w *worker) publisher(ctx context.Context, k int, pp PlanPub, bc *benchConn, ch string, pacer *Pacer, end time.Time) {
	buf := make([]byte, 0, max(w.plan.Payload, minPayload)+16)
	id := k*w.plan.NumPubs + pp.ID
	for {
		n, due, ok := pacer.Next(ctx, end)
		if !ok {
			return
		}
		s := bc.sess.Load()
		if s == nil {
			continue
		}
		c := s.c
		now := time.Now()
		storeMax(&w.lateness[k], int64(now.Sub(due)))
		buf = AppendPayload(buf[:0], Payload{P: id, N: int(n), T: now.UnixNano()}, w.plan.Payload)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if pp.To != "" {
			_, _, err = c.DM(sctx, pp.To, "", buf)
		} else {
			_, err = c.Say(sctx, ch, "", buf)
		}
		cancel()
		w.account(k, id, int(n), now, err)
	}
}

// account counts message n of publisher id (the ledger's, in window k),
// sent at sentAt: acknowledged when err is nil, else refused or failed.
func (w *worker) account(k, id, n int, sentAt time.Time, err error) {
	w.ledger.Sent(id, n, err == nil)
	w.sent.Add(1)
	if err != nil {
		w.errs.Add(1)
		w.pubMu.Lock()
		w.pubErrs[k][errorKind(err)]++
		w.pubMu.Unlock()
		return
	}
	w.ack[k].Record(time.Since(sentAt))
}

// drain waits for the last deliveries: until this worker's clients have
// every message the run's publishers got acknowledged (acked[p] of
// publisher p, for each client active in p's group), then Quiet more for
// late duplicates; no longer than Drain in all.
func (w *worker) drain(ctx context.Context, k int, acked []uint64, active []int) {
	var want uint64
	for p, n := range acked {
		if p < len(w.plan.PubGroups) {
			if g := w.plan.PubGroups[p]; g >= 0 && g < len(active) {
				want += n * uint64(active[g])
			}
		}
	}
	if want == 0 {
		return
	}
	deadline := time.Now().Add(w.plan.Drain)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for w.delivered[k].Load() < want && time.Now().Before(deadline) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
	if grace := time.Now().Add(w.plan.Quiet); grace.Before(deadline) {
		deadline = grace
	}
	sleepUntil(ctx, deadline)
}

// storm drops every client at once (closing its TCP connection, as a
// network failure would) and reconnects them all, retrying with jittered
// backoff until win.End. Publishers are spared, so that messages are said
// while the others are away; v2 clients resume from the last sequence
// numbers they saw.
func (w *worker) storm(ctx context.Context, win Window, res *WorkerResult) {
	start := time.Now()
	res.DropAt = start
	rctx, cancel := context.WithDeadline(ctx, win.End)
	defer cancel()
	var dropped []*benchConn
	var old []*session
	resume := make(map[*benchConn]map[string]uint64)
	// With publishers, they stay: the world goes on talking while the
	// others are away.
	publishing := make(map[int]bool)
	if len(w.plan.PubRates) > 0 {
		for _, pp := range w.plan.Pubs {
			publishing[pp.Conn] = true
		}
	}
	for i, bc := range w.conns {
		if publishing[i] {
			continue
		}
		if s := bc.sess.Swap(nil); s != nil {
			s.ending.Store(true)
			s.drop()
			old = append(old, s)
			dropped = append(dropped, bc)
		}
	}
	// A client's new reader starts once its old one has stopped: they
	// share the client's receiver.
	for i, s := range old {
		select {
		case <-s.done:
		case <-rctx.Done():
		}
		if s.c.Version() != "v1" {
			resume[dropped[i]] = s.c.LastSeqs()
		}
	}
	conc := max(w.plan.ConnectConcurrency, 1)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var back, retries atomic.Int64
	var lastBack atomic.Int64
	for _, bc := range dropped {
		select {
		case sem <- struct{}{}:
		case <-rctx.Done():
		}
		if rctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			backoff := 50 * time.Millisecond
			for attempt := 0; attempt < 100; attempt++ {
				err := w.dial(rctx, bc, resume[bc])
				if err == nil {
					w.reconnect.Record(time.Since(start))
					back.Add(1)
					storeMax(&lastBack, time.Now().UnixNano())
					return
				}
				w.stormErrs.add(err)
				if rctx.Err() != nil {
					return
				}
				retries.Add(1)
				sleepUntil(rctx, time.Now().Add(backoff/2+rand.N(backoff)))
				backoff = min(backoff*2, time.Second)
			}
		}()
	}
	wg.Wait()
	res.Reconnected = int(back.Load())
	res.Resumed, res.NotRecovered = w.resumed.Load(), w.notRecovered.Load()
	res.NotBack = len(dropped) - res.Reconnected
	if l := lastBack.Load(); l > 0 {
		res.LastBack = time.Unix(0, l)
	}
	res.Reconnect = &w.reconnect
	res.Retries = int(retries.Load())
	res.StormErrors = w.stormErrs.snapshot()
}

// close ends every session, at most 256 closing handshakes at a time,
// each bounded by a second.
func (w *worker) close() {
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, bc := range w.conns {
		s := bc.sess.Swap(nil)
		if s == nil {
			continue
		}
		s.ending.Store(true)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t := time.AfterFunc(time.Second, s.drop)
			_ = s.c.Close()
			t.Stop()
		}()
	}
	wg.Wait()
	w.dialer.Close()
	if w.poster != nil {
		w.poster.close()
	}
}

// storeMax raises a to v when v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
