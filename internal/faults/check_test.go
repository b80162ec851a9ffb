package faults

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	// v1Grace: a v1 member must have received a message acknowledged at
	// least this long before its connection ended (see the package
	// documentation).
	v1Grace = time.Second
	// apiBound is the longest an API call may take to be answered, even
	// while a part of the stack is down.
	apiBound = 2 * time.Second
)

// outage is what a fault reports to the checks: when it began, when the
// faulty part was back, and how soon after that every member must be
// connected again.
type outage struct {
	began, back time.Time
	within      time.Duration
	// maxDown, when not zero, bounds every single downtime of a member.
	maxDown time.Duration
	// busLost, when not zero, is when the UAs lost the message bus. A v1
	// connection that ended between then and the recovery is held only to
	// what was acknowledged [v1Grace] before it: a message acknowledged
	// to its sender as the bus died may not have reached the UAs, and a
	// UA that fences itself before the bus is back can no longer read it
	// for a client that has no resume.
	busLost time.Time
}

// figures are a round's counts.
type figures struct {
	clients, v2, v1                  int
	sent, acked, refused, unknown    int
	refusals                         map[string]int // by code
	delivered, expected, lost, dupes int
	disorder, gaps, unrecov          int
	phantoms                         int
	logged, logLost, logDupes        int
	logPhantoms                      int
	worstDown                        time.Duration
	bound                            time.Duration
	late                             int
	reconnects, drained              int
	apiCalls, api503, apiBad         int
	apiMax                           time.Duration
	restarts                         map[string]int
	crashes                          int
	// logDone is when the log was found to hold every acknowledged
	// message (zero if it never did).
	logDone time.Time

	problems []string       // the first examples of what went wrong
	kinds    map[string]int // problems seen, by kind
}

// problem records an example of what went wrong; only the first few of
// each kind are kept.
func (f *figures) problem(kind, format string, args ...any) {
	if f.kinds == nil {
		f.kinds = map[string]int{}
	}
	f.kinds[kind]++
	if f.kinds[kind] <= 4 {
		f.problems = append(f.problems, kind+": "+fmt.Sprintf(format, args...))
	}
}

// line is the one-line report of a fault.
func (f *figures) line(name string) string {
	var restarts []string
	for n, c := range f.restarts {
		restarts = append(restarts, fmt.Sprintf("%s+%d", n, c))
	}
	sort.Strings(restarts)
	bound := "none"
	if f.bound > 0 {
		bound = fmt.Sprintf("back %v after recovery", f.bound)
	}
	return fmt.Sprintf("%-16s clients %d (v2 %d, v1 %d) | sent %d acked %d refused %d %v unknown %d | delivered %d/%d lost %d dup %d disorder %d gaps %d unrecovered %d phantom %d | logged %d/%d lost %d dup %d phantom %d | worst downtime %.1fs (bound: %s; late %d) reconnects %d (asked %d) | api %d answers, 503 %d, bad %d, max %.0fms | unexpected restarts %v crashes %d",
		name, f.clients, f.v2, f.v1, f.sent, f.acked, f.refused, f.refusals, f.unknown,
		f.delivered, f.expected, f.lost, f.dupes, f.disorder, f.gaps, f.unrecov, f.phantoms,
		f.logged, f.acked, f.logLost, f.logDupes, f.logPhantoms,
		f.worstDown.Seconds(), bound, f.late, f.reconnects, f.drained,
		f.apiCalls, f.api503, f.apiBad, float64(f.apiMax.Microseconds())/1000, restarts, f.crashes)
}

// failed reports whether the figures break a rule.
func (f *figures) failed() bool {
	return f.lost+f.dupes+f.disorder+f.phantoms+f.logLost+f.logDupes+f.logPhantoms+f.late+f.apiBad+f.crashes+len(f.restarts) > 0
}

// expectedOf returns the acknowledged sends member m must have received
// in channel ch (see the package documentation).
func expectedOf(m *member, acks []send, o outage) []send {
	if m.v == "v2" {
		return acks
	}
	var out []send
	for _, s := range acks {
		for _, sp := range m.spans {
			end := sp.end
			if !o.busLost.IsZero() && !end.Before(o.busLost) && !end.After(o.back.Add(o.within)) {
				end = o.busLost
			}
			if s.began.After(sp.ready) && (end.IsZero() || s.acked.Add(v1Grace).Before(end)) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// ackedByChannel returns the acknowledged sends per channel, in seq order,
// but those a prober deleted through the API (neither the log nor the
// members keep a deleted message).
func (r *round) ackedByChannel(sends []send) map[string][]send {
	out := map[string][]send{}
	for _, s := range sends {
		if _, done := r.s.wasDeleted(s.id); s.outcome == acked && !done {
			out[s.ch] = append(out[s.ch], s)
		}
	}
	for _, l := range out {
		slices.SortFunc(l, func(a, b send) int { return a.acked.Compare(b.acked) })
	}
	return out
}

// missing counts the expected deliveries not yet received by any member.
func (r *round) missing(o outage) int {
	byCh := r.ackedByChannel(r.ledger.snapshot())
	n := 0
	for _, m := range r.members {
		m.mu.Lock()
		for _, ch := range m.chans {
			have := map[string]bool{}
			for _, x := range m.got[ch] {
				have[x.id] = true
			}
			for _, s := range expectedOf(m, byCh[ch], o) {
				if !have[s.id] {
					n++
				}
			}
		}
		m.mu.Unlock()
	}
	return n
}

// logEntry is one message of the log as the API returns it.
type logEntry struct {
	id, cid string
	seq     uint64
}

// readLog reads channel ch's whole log through the API, page by page.
func (r *round) readLog(ch string) ([]logEntry, error) {
	var out []logEntry
	after := ""
	for {
		path := "/channels/" + ch + "/messages?limit=500"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		status, m, err := r.api.call("v1", "GET", path, nil)
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %v %v", path, status, m, err)
		}
		msgs, _ := m["messages"].([]any)
		for _, x := range msgs {
			e, _ := x.(map[string]any)
			id, _ := e["id"].(string)
			text, _ := e["text"].(string)
			seq, _ := e["seq"].(float64)
			cid, _ := strings.CutPrefix(text, "f:")
			out = append(out, logEntry{id: id, cid: cid, seq: uint64(seq)})
		}
		next, _ := m["next"].(string)
		if next == "" || len(msgs) == 0 {
			return out, nil
		}
		after = next
	}
}

// check waits for deliveries and the log to catch up (up to CatchUp),
// then counts. It fails t for every broken rule and returns the figures.
func (r *round) check(t *testing.T, o outage) figures {
	t.Helper()
	r.stopTraffic()
	// Sends in flight finish within SayTimeout.
	deadline := time.Now().Add(r.cfg.CatchUp)
	time.Sleep(500 * time.Millisecond)
	for r.missing(o) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}

	sends := r.ledger.snapshot()
	byCh := r.ackedByChannel(sends)
	f := figures{clients: len(r.members), bound: o.within, restarts: map[string]int{}, refusals: map[string]int{}}
	for name, n := range r.s.unexpectedStarts() {
		if d := n - r.baseRestarts[name]; d > 0 {
			f.restarts[name] = d
		}
	}
	refusedCID := map[string]bool{}
	seqOf := map[string]uint64{}
	for _, s := range sends {
		f.sent++
		switch s.outcome {
		case acked:
			f.acked++
			if s.seq != 0 {
				seqOf[s.id] = s.seq
			}
		case refused:
			f.refused++
			f.refusals[s.refusal]++
			refusedCID[s.cid] = true
		case unknown, pending:
			f.unknown++
		}
	}

	// The log.
	idsOfCID := map[string]map[string]bool{}
	addID := func(cid, id string) {
		if idsOfCID[cid] == nil {
			idsOfCID[cid] = map[string]bool{}
		}
		idsOfCID[cid][id] = true
	}
	var logs map[string][]logEntry
	for {
		logs = map[string][]logEntry{}
		lost := 0
		var err error
		for _, ch := range r.chans {
			if logs[ch], err = r.readLog(ch); err != nil {
				break
			}
			have := map[string]bool{}
			for _, e := range logs[ch] {
				have[e.id] = true
			}
			for _, s := range byCh[ch] {
				if !have[s.id] {
					lost++
				}
			}
		}
		if (err == nil && lost == 0) || time.Now().After(deadline.Add(10*time.Second)) {
			if err == nil && lost == 0 {
				f.logDone = time.Now()
			}
			if err != nil {
				f.logLost = f.acked
				f.problem("log", "log unreadable: %v", err)
			}
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, ch := range r.chans {
		have := map[string]int{}
		for _, e := range logs[ch] {
			have[e.id]++
			if e.seq != 0 {
				seqOf[e.id] = e.seq
			}
			addID(e.cid, e.id)
			if refusedCID[e.cid] {
				f.logPhantoms++
				f.problem("log phantom", "%s is in the log, but its send was refused", e.cid)
			}
		}
		for _, s := range byCh[ch] {
			switch n := have[s.id]; {
			case n == 0:
				f.logLost++
				why := ""
				if probed, _ := r.s.wasDeleted(s.id); probed {
					why = ": a prober had deleted this id before it existed"
				}
				f.problem("log lost", "acked %s (%s) is not in the log of %s%s", s.cid, s.id, ch, why)
			case n > 1:
				f.logDupes += n - 1
			default:
				f.logged++
			}
		}
	}
	for cid, ids := range idsOfCID {
		if len(ids) > 1 {
			f.logDupes += len(ids) - 1
			f.problem("log dup", "cid %s is in the log %d times: %v", cid, len(ids), ids)
		}
	}

	// Deliveries.
	deliveredIDs := map[string]map[string]bool{} // cid -> ids, over every member
	for _, m := range r.members {
		m.mu.Lock()
		if m.v == "v2" {
			f.v2++
		} else {
			f.v1++
		}
		gaps := 0
		for _, g := range m.gaps {
			if !r.s.deletedWithin(g.last, g.prev) {
				gaps++
			}
		}
		f.gaps += gaps
		f.unrecov += m.unrecov
		if gaps > m.unrecov {
			// A v2 member sees prev continue from the last seq it has,
			// live (the UA repairs its own gaps) and after a resume.
			f.problem("gap", "%s (%s) saw %d messages whose prev was not the last seq it had (%d resumes not recovered)", m.user, m.v, gaps, m.unrecov)
		}
		f.drained += m.drained
		f.reconnects += len(m.spans) - 1
		late := !(len(m.spans) > 0 && m.spans[len(m.spans)-1].end.IsZero())
		for _, d := range m.downs {
			f.worstDown = max(f.worstDown, d)
			if o.maxDown > 0 && d > o.maxDown {
				late = true
			}
		}
		for _, sp := range m.spans[1:] {
			if o.within > 0 && sp.ready.After(o.began) && sp.ready.After(o.back.Add(o.within)) {
				late = true
			}
		}
		if late {
			f.late++
			f.problem("late", "%s (%s) was not back within %v after the recovery, or down longer than %v (connections %d, downtimes %v)", m.user, m.v, o.within, o.maxDown, len(m.spans), m.downs)
		}
		for _, ch := range m.chans {
			seen := map[string]int{}
			var lastSeq uint64
			for _, x := range m.got[ch] {
				f.delivered++
				seen[x.id]++
				if seen[x.id] > 1 {
					f.dupes++
					f.problem("dup", "%s (%s) received %s twice in %s", m.user, m.v, x.id, ch)
					continue
				}
				if deliveredIDs[x.cid] == nil {
					deliveredIDs[x.cid] = map[string]bool{}
				}
				deliveredIDs[x.cid][x.id] = true
				if refusedCID[x.cid] {
					f.phantoms++
					f.problem("phantom", "%s received %s, whose send was refused", m.user, x.cid)
				}
				seq := x.seq
				if seq == 0 {
					seq = seqOf[x.id]
				}
				if seq != 0 {
					if seq <= lastSeq {
						f.disorder++
						f.problem("disorder", "%s (%s) received seq %d after %d in %s", m.user, m.v, seq, lastSeq, ch)
					}
					lastSeq = seq
				}
			}
			exp := expectedOf(m, byCh[ch], o)
			f.expected += len(exp)
			for _, s := range exp {
				if seen[s.id] == 0 {
					f.lost++
					f.problem("lost", "%s (%s) lacks %s (%s) of %s, acked %s", m.user, m.v, s.cid, s.id, ch, s.acked.Format("15:04:05.000"))
				}
			}
		}
		m.mu.Unlock()
	}
	for cid, ids := range deliveredIDs {
		if len(ids) > 1 {
			f.dupes += len(ids) - 1
			f.problem("dup", "cid %s was delivered under %d ids", cid, len(ids))
		}
	}

	// The API.
	ackedIDs := map[string]bool{}
	for _, s := range sends {
		if s.outcome == acked {
			ackedIDs[s.id] = true
		}
	}
	r.cmu.Lock()
	for _, c := range r.calls {
		f.apiCalls++
		f.apiMax = max(f.apiMax, c.took)
		good := c.err == nil && (c.status == http.StatusServiceUnavailable || slices.Contains(c.goodFor, c.status)) && c.took <= apiBound
		if c.deleted != "" && c.err == nil && c.status == http.StatusNoContent {
			// The message existed already: right only if it was sent.
			good = ackedIDs[c.deleted] && c.took <= apiBound
		}
		if c.err == nil && c.status == http.StatusServiceUnavailable {
			f.api503++
		}
		if !good {
			f.apiBad++
			f.problem("api", "API %s at %s: status %d, err %v, took %v", c.what, c.at.Format("15:04:05.000"), c.status, c.err, c.took.Round(time.Millisecond))
		}
	}
	r.cmu.Unlock()

	n, lines := r.s.out.crashes()
	if f.crashes = n - r.baseCrashes; f.crashes > 0 {
		f.problem("crash", "%d crash lines; the first of the run: %q", f.crashes, lines)
	}
	return f
}
