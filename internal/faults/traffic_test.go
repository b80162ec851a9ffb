package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// roundConfig holds a round's tunables.
type roundConfig struct {
	// V2 and V1 are the numbers of members of each version.
	V2, V1 int
	// Channels is the number of channels; each member belongs to its home
	// channel and the next one.
	Channels int
	// SayEvery is each member's mean interval between messages.
	SayEvery time.Duration
	// ProbeEvery is the interval between the prober's API calls.
	ProbeEvery time.Duration
	// SayTimeout bounds the wait for the answer to one send.
	SayTimeout time.Duration
	// Warmup is how long traffic runs before the fault; Settle how long it
	// goes on after the faulty part is back.
	Warmup, Settle time.Duration
	// CatchUp bounds the wait for deliveries and the log after traffic
	// stops.
	CatchUp time.Duration
	// ProbeDeletes makes the prober delete ids that do not exist yet.
	ProbeDeletes bool
	// Lifetime, when not zero, makes members churn: each connection of a
	// churning member is closed by the member after between half and one
	// and a half Lifetime, and the member dials again. Every StableEvery-th
	// member (0: none) stays connected.
	Lifetime    time.Duration
	StableEvery int
	// LobbyEvery, when not zero, makes each member join or leave the
	// round's open lobby channel (presence events) about this often.
	LobbyEvery time.Duration
}

func defaultRoundConfig() roundConfig {
	return roundConfig{V2: 40, V1: 20, Channels: 4, SayEvery: 800 * time.Millisecond, ProbeEvery: 300 * time.Millisecond,
		SayTimeout: 5 * time.Second, Warmup: 3 * time.Second, Settle: 4 * time.Second, CatchUp: 20 * time.Second,
		ProbeDeletes: true}
}

// Outcomes of a send (see the package documentation).
const (
	pending = iota // no answer yet
	acked          // "ok" or 201
	refused        // an error answer at the first attempt: never stored
	unknown        // no answer to some attempt; resent until answered
)

// send is one message a member or the prober sent, by cid.
type send struct {
	cid, ch, from string // from: "" for a system message
	began, acked  time.Time
	outcome       int
	id            string
	seq           uint64
	attempts      int
	lostAnswer    bool   // some attempt got no answer
	refusal       string // the error code of a refusal
}

// ledger is what a round sent, by cid.
type ledger struct {
	mu    sync.Mutex
	sends map[string]*send
	order []string
	// maxSeq is the highest acknowledged seq, and epoch the message ids'
	// prefix (ids are EPOCH-SEQ; the prober deletes future ones).
	maxSeq uint64
	epoch  string
}

func (l *ledger) begin(cid, ch, from string) *send {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sends[cid]
	if s == nil {
		s = &send{cid: cid, ch: ch, from: from, began: time.Now()}
		l.sends[cid] = s
		l.order = append(l.order, cid)
	}
	s.attempts++
	return s
}

// answer records the outcome of one attempt: err nil is an ack (id, seq);
// an answered error is a refusal (*kaiwa.Error or an HTTP error status),
// anything else no answer. It reports whether the cid needs sending again.
func (l *ledger) answer(s *send, id string, seq uint64, err error, answered bool) (again bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		s.outcome, s.id, s.seq, s.acked = acked, id, seq, time.Now()
		if seq > l.maxSeq {
			l.maxSeq = seq
		}
		if i := strings.LastIndexByte(id, '-'); i > 0 && l.epoch == "" {
			l.epoch = id[:i]
		}
		return false
	case answered && !s.lostAnswer && !inDoubt(err):
		s.outcome = refused
		s.refusal = refusalCode(err)
		return false
	default:
		s.lostAnswer = true
		s.outcome = unknown
		return true
	}
}

// inDoubt reports whether an answered error leaves the outcome unknown:
// "unavailable" (on the WebSocket, or 503 from the API) says the message
// may have been stored, and a resend with the same cid cannot store it
// twice (docs/protocol.md, docs/api.md).
func inDoubt(err error) bool {
	return kaiwa.IsCode(err, kaiwa.CodeUnavailable) || strings.Contains(err.Error(), "http 503")
}

// refusalCode names why a send was refused: the error code, or the HTTP
// status the prober saw.
func refusalCode(err error) string {
	if c := kaiwa.ErrorCode(err); c != kaiwa.CodeInternal || errors.As(err, new(*kaiwa.Error)) {
		return string(c)
	}
	return err.Error()
}

// snapshot copies the sends.
func (l *ledger) snapshot() []send {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]send, 0, len(l.order))
	for _, cid := range l.order {
		out = append(out, *l.sends[cid])
	}
	return out
}

func (l *ledger) future() (epoch string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, l.maxSeq
}

// gap is a v2 message whose prev was not the last seq its member had.
type gap struct{ last, prev uint64 }

// receipt is one message as a member received it.
type receipt struct {
	id, cid string
	seq     uint64
	at      time.Time
}

// span is one connection of a member: from ready to its end as the client
// saw it (zero while open).
type span struct{ ready, end time.Time }

// member is one client of a round, kept connected until the round ends.
type member struct {
	r     *round
	user  string
	v     string // "v1" or "v2"
	token string
	home  string
	chans []string
	proxy *testenv.Proxy
	churn bool // closes each connection after a while (roundConfig.Lifetime)

	mu         sync.Mutex
	spans      []span
	got        map[string][]receipt // by channel
	last       map[string]uint64    // v2: the last seq received per channel
	gaps       []gap                // v2: messages whose prev was not the last seq
	unrecov    int                  // v2: resumes that could not recover
	drained    int                  // connections the server asked to reconnect
	downs      []time.Duration      // each time from a connection's end to the next ready
	pendingCID string               // a cid whose outcome is unknown, sent first on the next connection
	n          int                  // messages begun
	dialErrs   int
}

// connected reports whether the member has an open connection.
func (m *member) connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.spans) > 0 && m.spans[len(m.spans)-1].end.IsZero()
}

func (m *member) record(ev client.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.Op {
	case "msg":
		msg := ev.Msg
		cid, _ := strings.CutPrefix(msg.Text, "f:")
		m.got[msg.Ch] = append(m.got[msg.Ch], receipt{id: msg.ID, cid: cid, seq: msg.Seq, at: time.Now()})
		if m.v == "v2" && msg.Seq != 0 {
			if msg.Prev != m.last[msg.Ch] {
				m.gaps = append(m.gaps, gap{last: m.last[msg.Ch], prev: msg.Prev})
			}
			if msg.Seq > m.last[msg.Ch] {
				m.last[msg.Ch] = msg.Seq
			}
		}
	case "resumed":
		if !ev.Recovered {
			m.unrecov++
		}
	case "reconnect":
		m.drained++
	}
}

// resume returns the v2 resume map: the last seq per channel, 0 for a
// channel nothing was received from.
func (m *member) resume() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]uint64{}
	for _, ch := range m.chans {
		out[ch] = m.last[ch]
	}
	return out
}

// run keeps the member connected until ctx ends, saying messages while
// the round's traffic is on.
func (m *member) run(ctx context.Context) {
	backoff := 250 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		o := client.Options{TLSConfig: m.r.s.tls, Token: m.token, EventBuffer: 8192}
		if m.v == "v2" && !first {
			o.Resume = m.resume()
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := client.Dial(dctx, "wss://"+m.proxy.Addr()+"/"+m.v+"/ws", o)
		cancel()
		if err != nil {
			m.mu.Lock()
			m.dialErrs++
			m.mu.Unlock()
			sleep(ctx, jitter(backoff))
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		first = false
		now := time.Now()
		m.mu.Lock()
		if n := len(m.spans); n > 0 {
			m.downs = append(m.downs, now.Sub(m.spans[n-1].end))
		}
		m.spans = append(m.spans, span{ready: now})
		m.mu.Unlock()

		readDone := make(chan int) // the after_ms of a reconnect, or -1
		go func() {
			after := -1
			for ev := range conn.Events() {
				m.record(ev)
				if ev.Op == "reconnect" {
					after = ev.AfterMS
				}
			}
			readDone <- after
		}()
		sayCtx, stopSaying := context.WithCancel(ctx)
		sayDone := make(chan struct{})
		go func() { defer close(sayDone); m.say(sayCtx, conn) }()
		// A churning member closes its connection after a while, as long as
		// the traffic is on.
		life := time.AfterFunc(time.Duration(1<<62), func() {
			select {
			case <-m.r.trafficOff:
			default:
				conn.Close()
			}
		})
		if m.churn {
			life.Reset(jitterAround(m.r.cfg.Lifetime))
		}
		var after int
		select {
		case after = <-readDone:
		case <-ctx.Done():
			conn.Close()
			after = <-readDone
		}
		life.Stop()
		m.mu.Lock()
		m.spans[len(m.spans)-1].end = time.Now()
		m.mu.Unlock()
		stopSaying()
		<-sayDone
		conn.Close()
		if after >= 0 {
			sleep(ctx, time.Duration(after)*time.Millisecond)
		} else {
			sleep(ctx, jitter(backoff))
		}
	}
}

// say sends messages on conn while the round's traffic is on: first the
// cid whose outcome is unknown, if any, then new ones.
func (m *member) say(ctx context.Context, conn *client.Conn) {
	r := m.r
	select {
	case <-r.trafficOn:
	case <-ctx.Done():
		return
	case <-conn.Done():
		return
	}
	var lobby <-chan time.Time
	if r.cfg.LobbyEvery > 0 {
		t := time.NewTicker(jitterAround(r.cfg.LobbyEvery))
		defer t.Stop()
		lobby = t.C
	}
	inLobby := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-conn.Done():
			return
		case <-r.trafficOff:
			return
		case <-lobby:
			lctx, cancel := context.WithTimeout(ctx, r.cfg.SayTimeout)
			var err error
			if inLobby {
				err = conn.Leave(lctx, r.lobby)
			} else {
				err = conn.Join(lctx, r.lobby)
			}
			cancel()
			if err == nil {
				inLobby = !inLobby
			}
			continue
		case <-time.After(jitterAround(r.cfg.SayEvery)):
		}
		m.mu.Lock()
		cid := m.pendingCID
		if cid == "" {
			cid = fmt.Sprintf("%s-%d", m.user, m.n)
			m.n++
		}
		m.mu.Unlock()
		s := r.ledger.begin(cid, m.home, m.user)
		sctx, cancel := context.WithTimeout(ctx, r.cfg.SayTimeout)
		id, seq, err := conn.SayCID(sctx, m.home, "f:"+cid, nil, cid)
		cancel()
		var ke *kaiwa.Error
		again := r.ledger.answer(s, id, seq, err, errors.As(err, &ke))
		m.mu.Lock()
		if again {
			m.pendingCID = cid
		} else {
			m.pendingCID = ""
		}
		m.mu.Unlock()
		if err != nil && ke == nil {
			// No answer: the connection is probably going; the next one
			// sends the cid again.
			select {
			case <-conn.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// apiCall is one call of the prober.
type apiCall struct {
	what    string
	status  int
	err     error
	took    time.Duration
	at      time.Time
	goodFor []int // statuses that are right answers besides 503
	// deleted is the id a deletion probe asked for; its 204 is right
	// when a message of that id was acknowledged.
	deleted string
}

// round is one fault's traffic: its members, channels and sends.
type round struct {
	t       *testing.T
	s       *stack
	name    string // a short tag: the prefix of its channels, users and cids
	cfg     roundConfig
	chans   []string
	lobby   string // an open channel members join and leave
	members []*member
	ledger  ledger
	api     *apiClient

	trafficOn  chan struct{}
	trafficOff chan struct{}
	stop       context.CancelFunc
	wg         sync.WaitGroup

	cmu   sync.Mutex
	calls []apiCall
	nSys  atomic.Int64

	// What earlier rounds left: unexpected restarts and crash lines.
	baseRestarts map[string]int
	baseCrashes  int
}

// newRound makes the round's channels, members and tokens, connects every
// member and returns once all are ready. The members are disconnected in
// t.Cleanup.
func newRound(t *testing.T, s *stack, name string, cfg roundConfig) *round {
	t.Helper()
	r := &round{t: t, s: s, name: name, cfg: cfg, ledger: ledger{sends: map[string]*send{}},
		api: s.apiClient(5 * time.Second), trafficOn: make(chan struct{}), trafficOff: make(chan struct{}),
		baseRestarts: s.unexpectedStarts()}
	r.baseCrashes, _ = s.out.crashes()
	setup := s.apiClient(10 * time.Second)
	for i := range cfg.Channels {
		ch := fmt.Sprintf("%s.room.%d", name, i)
		r.chans = append(r.chans, ch)
		setup.must(t, 201, "v1", "PUT", "/channels/"+ch, map[string]any{"kind": "closed", "title": ch})
	}
	r.lobby = name + ".lobby"
	setup.must(t, 201, "v1", "PUT", "/channels/"+r.lobby, map[string]any{"kind": "open"})
	for i := range cfg.V2 + cfg.V1 {
		v := "v2"
		if i >= cfg.V2 {
			v = "v1"
		}
		home := i % cfg.Channels
		m := &member{r: r, user: fmt.Sprintf("%s-u%d", name, i), v: v,
			home: r.chans[home], chans: []string{r.chans[home], r.chans[(home+1)%cfg.Channels]},
			got: map[string][]receipt{}, last: map[string]uint64{}, proxy: testenv.NewProxy(t, s.https),
			churn: cfg.Lifetime > 0 && (cfg.StableEvery == 0 || i%cfg.StableEvery != 0)}
		for _, ch := range m.chans {
			setup.must(t, 201, "v1", "PUT", "/channels/"+ch+"/members/"+m.user, nil)
		}
		m.token = setup.must(t, 201, "v1", "POST", "/tokens", map[string]any{
			// Membership alone should let a member speak (the contract), but
			// the UA checks the publish prefixes only: grant them too.
			"user": m.user, "name": m.user, "ttl_seconds": 3600, "join": []string{name + "."}, "publish": []string{name + "."},
		})["token"].(string)
		r.members = append(r.members, m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	for _, m := range r.members {
		r.wg.Go(func() { m.run(ctx) })
	}
	t.Cleanup(r.end)
	testenv.Eventually(t, "every member ready", 30*time.Second, func() bool {
		for _, m := range r.members {
			if !m.connected() {
				return false
			}
		}
		return true
	})
	return r
}

// end disconnects every member.
func (r *round) end() {
	r.stopTraffic()
	r.stop()
	r.wg.Wait()
}

// startTraffic lets the members say and starts the API prober.
func (r *round) startTraffic() {
	close(r.trafficOn)
	r.wg.Go(r.probe)
}

// stopTraffic stops saying and probing; sends in flight finish.
func (r *round) stopTraffic() {
	select {
	case <-r.trafficOff:
	default:
		close(r.trafficOff)
	}
}

// probe calls the tenant API in turn until the traffic stops.
func (r *round) probe() {
	tick := time.NewTicker(r.cfg.ProbeEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-r.trafficOff:
			return
		case <-tick.C:
		}
		v := []string{"v1", "v2"}[i/4%2]
		ch := r.chans[i%len(r.chans)]
		var c apiCall
		began := time.Now()
		switch i % 4 {
		case 0: // a system message: it is a send like any other
			cid := fmt.Sprintf("%s-sys-%d", r.name, r.nSys.Add(1))
			s := r.ledger.begin(cid, ch, "")
			status, m, err := r.api.call(v, "POST", "/channels/"+ch+"/messages", map[string]any{"text": "f:" + cid, "cid": cid})
			c = apiCall{what: "POST messages", status: status, err: err, goodFor: []int{201}}
			id, _ := m["id"].(string)
			seq, _ := m["seq"].(float64)
			var serr error
			switch {
			case err != nil:
				serr = err
			case status != http.StatusCreated:
				serr = fmt.Errorf("http %d", status)
			}
			r.ledger.answer(s, id, uint64(seq), serr, err == nil && status >= 400 && m["error"] != nil)
		case 1:
			status, _, err := r.api.call(v, "GET", "/channels/"+ch+"/messages?limit=5&order=desc", nil)
			c = apiCall{what: "GET messages", status: status, err: err, goodFor: []int{200}}
		case 2:
			status, _, err := r.api.call(v, "POST", "/tokens", map[string]any{"user": "probe", "name": "Probe", "ttl_seconds": 60})
			c = apiCall{what: "POST tokens", status: status, err: err, goodFor: []int{201}}
		case 3: // the deletion of an id that does not exist yet
			epoch, seq := r.ledger.future()
			if epoch == "" || !r.cfg.ProbeDeletes {
				continue
			}
			id := epoch + "-" + strconv.FormatUint(seq+uint64(20+rand.IntN(40)), 10)
			r.s.deleting(id, false)
			status, _, err := r.api.call(v, "DELETE", "/channels/"+ch+"/messages/"+id, nil)
			c = apiCall{what: "DELETE unknown message", status: status, err: err, goodFor: []int{404}, deleted: id}
			if err == nil && status == http.StatusNoContent {
				// The guess was late: the message was in the stream
				// already. Right only if it was acknowledged (checked
				// with the round).
				r.s.deleting(id, true)
			}
		}
		c.took, c.at = time.Since(began), began
		r.recordCall(c)
	}
}

func (r *round) recordCall(c apiCall) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.calls = append(r.calls, c)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// jitter returns a duration between d/2 and d.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// jitterAround returns a duration between d/2 and 3d/2.
func jitterAround(d time.Duration) time.Duration { return d/2 + rand.N(d+1) }
