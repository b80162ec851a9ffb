// Package stats keeps one process's recent figures per tenant, for the
// tenant API's GET /stats: the sessions open now by protocol version,
// counts over the last minute and hour (messages, deliveries, NG blocks and
// masks, slow-consumer closes), the v2 clients' round-trip times over the
// last five minutes, and the log writer's lag from publish to commit.
//
// Every process keeps a [Book] and answers a tenant's stats request with
// its [Book.Report]; the asking API process adds the reports up with
// [Merge]. Reports carry counts and histograms, never samples of users or
// channels, so they merge exactly: a percentile of the merged histogram is
// the percentile over every process's sessions.
//
// A Book is safe for concurrent use. Its memory is bounded per tenant
// (a few fixed windows and at most five histograms of bounded size), and
// a tenant idle for an hour is forgotten.
package stats

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// Kind names a count a Book keeps per tenant.
type Kind int

// The counts.
const (
	// Messages published (chat and system), counted where published.
	Messages Kind = iota
	// Deliveries to local sessions.
	Deliveries
	// NGBlocked: messages refused for an NG word.
	NGBlocked
	// NGMasked: messages whose NG words were masked.
	NGMasked
	// SlowCloses: sessions closed as slow consumers.
	SlowCloses
	// Written: messages the log writer committed.
	Written
	numKinds
)

// kindNames are the kinds' names in a [Report].
var kindNames = [numKinds]string{"messages", "deliveries", "ng_blocked", "ng_masked", "slow_closes", "written"}

// Slots of the windows: the minute in 5 s slots, the hour in 1 min slots,
// the RTT histograms in 1 min slots over five minutes.
const (
	minuteSlot = 5 * time.Second
	minuteN    = 12
	hourSlot   = time.Minute
	hourN      = 60
	rttSlots   = 5
)

// Book keeps a process's figures per tenant.
type Book struct {
	// Now is the clock; nil means time.Now. Tests set it before use.
	Now func() time.Time

	mu      sync.Mutex
	tenants map[kaiwa.TenantID]*tenant
}

// NewBook returns an empty Book.
func NewBook() *Book { return &Book{tenants: make(map[kaiwa.TenantID]*tenant)} }

// tenant is one tenant's figures, guarded by its mu.
type tenant struct {
	mu       sync.Mutex
	seen     time.Time
	sessions map[string]int
	minute   [numKinds]window
	hour     [numKinds]window
	lag      window // the largest publish-to-commit lag, ms, per slot
	rtt      [rttSlots]rttSlot
}

// window is a ring of slots of one width: counts (or maxima) per slot.
type window struct {
	at  []int64 // the slot index each position holds
	val []int64
}

func (w *window) add(slot int64, n int64, n0 int, keepMax bool) {
	if w.at == nil {
		w.at, w.val = make([]int64, n0), make([]int64, n0)
	}
	i := int(slot % int64(n0))
	if w.at[i] != slot {
		w.at[i], w.val[i] = slot, 0
	}
	if keepMax {
		w.val[i] = max(w.val[i], n)
	} else {
		w.val[i] += n
	}
}

// sum returns the total (or the maximum) of the slots after slot-n0.
func (w *window) sum(slot int64, keepMax bool) int64 {
	var s int64
	for i, at := range w.at {
		if at > slot-int64(len(w.at)) && at <= slot {
			if keepMax {
				s = max(s, w.val[i])
			} else {
				s += w.val[i]
			}
		}
	}
	return s
}

// rttSlot is one minute's histogram of round-trip times.
type rttSlot struct {
	at int64
	h  map[int]uint64 // bucket → samples
}

func (b *Book) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// get returns t's figures, locked, making them when t has none.
func (b *Book) get(t kaiwa.TenantID, now time.Time) *tenant {
	b.mu.Lock()
	ts := b.tenants[t]
	if ts == nil {
		ts = &tenant{sessions: map[string]int{}}
		b.tenants[t] = ts
		if len(b.tenants)%64 == 0 {
			b.forgetLocked(now)
		}
	}
	b.mu.Unlock()
	ts.mu.Lock()
	ts.seen = now
	return ts
}

// forgetLocked drops the tenants idle for an hour without open sessions.
// Call with b.mu held.
func (b *Book) forgetLocked(now time.Time) {
	for id, ts := range b.tenants {
		ts.mu.Lock()
		idle := now.Sub(ts.seen) > time.Hour && total(ts.sessions) == 0
		ts.mu.Unlock()
		if idle {
			delete(b.tenants, id)
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Add counts n of kind k for tenant t.
func (b *Book) Add(t kaiwa.TenantID, k Kind, n int) {
	if b == nil || n == 0 {
		return
	}
	now := b.now()
	ts := b.get(t, now)
	ts.minute[k].add(now.UnixNano()/int64(minuteSlot), int64(n), minuteN, false)
	ts.hour[k].add(now.UnixNano()/int64(hourSlot), int64(n), hourN, false)
	ts.mu.Unlock()
}

// Session counts a session of tenant t and protocol version v opening
// (delta 1) or closing (delta -1).
func (b *Book) Session(t kaiwa.TenantID, v string, delta int) {
	if b == nil {
		return
	}
	ts := b.get(t, b.now())
	ts.sessions[v] += delta
	if ts.sessions[v] <= 0 {
		delete(ts.sessions, v)
	}
	ts.mu.Unlock()
}

// RTT records one round-trip time of a v2 session of tenant t.
func (b *Book) RTT(t kaiwa.TenantID, rtt time.Duration) {
	if b == nil {
		return
	}
	now := b.now()
	ts := b.get(t, now)
	slot := now.UnixNano() / int64(time.Minute)
	s := &ts.rtt[slot%rttSlots]
	if s.at != slot || s.h == nil {
		s.at, s.h = slot, map[int]uint64{}
	}
	s.h[bucket(rtt)]++
	ts.mu.Unlock()
}

// Lag records that a message of tenant t was committed to the log lag
// after it was published.
func (b *Book) Lag(t kaiwa.TenantID, lag time.Duration) {
	if b == nil {
		return
	}
	now := b.now()
	ts := b.get(t, now)
	ts.lag.add(now.UnixNano()/int64(minuteSlot), max(lag.Milliseconds(), 0), minuteN, true)
	ts.mu.Unlock()
}

// Count is a count over the last minute and the last hour (each as far as
// its slots go: the minute in 5 s slots, the hour in 1 min slots).
type Count struct {
	Minute int64 `json:"minute"`
	Hour   int64 `json:"hour"`
}

// Report is one process's figures for one tenant, the reply to a stats
// request. Process says which kind of process answered ("ua", "api",
// "logwriter").
type Report struct {
	Process  string           `json:"process"`
	Sessions map[string]int   `json:"sessions,omitempty"`
	Counts   map[string]Count `json:"counts,omitempty"`
	// RTT is the histogram of the last five minutes: [bucket, samples]
	// pairs.
	RTT [][2]uint64 `json:"rtt,omitempty"`
	// LagMS is the largest publish-to-commit lag of the messages the
	// process's log writer committed in the last minute.
	LagMS int64 `json:"lag_ms,omitempty"`
}

// Report returns the process's figures for tenant t.
func (b *Book) Report(t kaiwa.TenantID, process string) Report {
	r := Report{Process: process}
	if b == nil {
		return r
	}
	now := b.now()
	b.mu.Lock()
	ts := b.tenants[t]
	b.mu.Unlock()
	if ts == nil {
		return r
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.sessions) > 0 {
		r.Sessions = make(map[string]int, len(ts.sessions))
		for v, n := range ts.sessions {
			r.Sessions[v] = n
		}
	}
	mslot, hslot := now.UnixNano()/int64(minuteSlot), now.UnixNano()/int64(hourSlot)
	for k := range numKinds {
		c := Count{Minute: ts.minute[k].sum(mslot, false), Hour: ts.hour[k].sum(hslot, false)}
		if c != (Count{}) {
			if r.Counts == nil {
				r.Counts = map[string]Count{}
			}
			r.Counts[kindNames[k]] = c
		}
	}
	r.LagMS = ts.lag.sum(mslot, true)
	rslot := now.UnixNano() / int64(time.Minute)
	h := map[int]uint64{}
	for _, s := range ts.rtt {
		if s.at > rslot-rttSlots && s.at <= rslot {
			for bk, n := range s.h {
				h[bk] += n
			}
		}
	}
	for bk, n := range h {
		r.RTT = append(r.RTT, [2]uint64{uint64(bk), n})
	}
	slices.SortFunc(r.RTT, func(a, b [2]uint64) int { return int(a[0]) - int(b[0]) })
	return r
}

// The RTT buckets: one per millisecond below linearMS, then 2% wide,
// up to a minute.
const (
	linearMS = 200
	growth   = 1.02
	maxMS    = 60_000
)

// bucket returns the histogram bucket of a round-trip time.
func bucket(d time.Duration) int {
	ms := min(max(d.Milliseconds(), 0), maxMS)
	if ms < linearMS {
		return int(ms)
	}
	return linearMS + int(math.Log(float64(ms)/linearMS)/math.Log(growth))
}

// bucketMS returns the middle of a bucket, in milliseconds.
func bucketMS(b int) float64 {
	if b < linearMS {
		return float64(b) + 0.5
	}
	lo := linearMS * math.Pow(growth, float64(b-linearMS))
	return lo * (1 + growth) / 2
}

// Merge adds up the reports of every process for tenant t into the
// tenant's stats.
func Merge(t kaiwa.TenantID, reports []Report, now time.Time) kaiwa.TenantStats {
	st := kaiwa.TenantStats{
		Tenant:    t,
		At:        now.UnixMilli(),
		Processes: map[string]int{},
		Sessions:  kaiwa.SessionStats{ByVersion: map[string]int{}},
	}
	counts := map[string]Count{}
	h := map[int]uint64{}
	for _, r := range reports {
		st.Processes[r.Process]++
		for v, n := range r.Sessions {
			st.Sessions.ByVersion[v] += n
			st.Sessions.Total += n
		}
		for k, c := range r.Counts {
			s := counts[k]
			s.Minute += c.Minute
			s.Hour += c.Hour
			counts[k] = s
		}
		for _, p := range r.RTT {
			if p[0] <= uint64(bucket(maxMS*time.Millisecond)) {
				h[int(p[0])] += p[1]
			}
		}
		st.LogWriter.LagMS = max(st.LogWriter.LagMS, r.LagMS)
	}
	win := func(k Kind) kaiwa.WindowCount {
		c := counts[kindNames[k]]
		return kaiwa.WindowCount{LastMinute: c.Minute, LastHour: c.Hour}
	}
	st.Messages = win(Messages)
	st.Deliveries = win(Deliveries)
	st.NGBlocked = win(NGBlocked)
	st.NGMasked = win(NGMasked)
	st.SlowConsumerCloses = win(SlowCloses)
	st.LogWriter.Written = win(Written)
	st.RTT = percentiles(h)
	return st
}

// percentiles returns p50, p90 and p99 of a histogram.
func percentiles(h map[int]uint64) kaiwa.RTTStats {
	var n uint64
	keys := make([]int, 0, len(h))
	for k, c := range h {
		keys = append(keys, k)
		n += c
	}
	out := kaiwa.RTTStats{Samples: n}
	if n == 0 {
		return out
	}
	slices.Sort(keys)
	at := func(p float64) float64 {
		want := uint64(math.Ceil(p * float64(n)))
		var cum uint64
		for _, k := range keys {
			cum += h[k]
			if cum >= want {
				return math.Round(bucketMS(k)*10) / 10
			}
		}
		return math.Round(bucketMS(keys[len(keys)-1])*10) / 10
	}
	out.P50, out.P90, out.P99 = at(0.50), at(0.90), at(0.99)
	return out
}
