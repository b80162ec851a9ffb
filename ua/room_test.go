package ua

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/ua/internal/wstest"
	"github.com/kaiwa-chat/kaiwa/versions"
)

func seqs(ms []kaiwa.Message) string {
	s := ""
	for _, m := range ms {
		s += fmt.Sprint(m.Seq, " ")
	}
	return s
}

func TestRoomRecentWindow(t *testing.T) {
	r := &room{}
	add := func(seq, prev uint64) {
		r.remember(&kaiwa.Message{Seq: seq, Prev: prev, ID: fmt.Sprint("m", seq)}, 4)
	}
	if _, ok := r.since(0); ok {
		t.Fatal("an empty window covers nothing")
	}
	add(10, 7)
	add(12, 10)
	add(15, 12)
	if got, ok := r.since(7); !ok || seqs(got) != "10 12 15 " {
		t.Errorf("since 7 = %q %v", seqs(got), ok)
	}
	if got, ok := r.since(12); !ok || seqs(got) != "15 " {
		t.Errorf("since 12 = %q %v", seqs(got), ok)
	}
	if got, ok := r.since(15); !ok || len(got) != 0 {
		t.Errorf("since the last = %q %v", seqs(got), ok)
	}
	if _, ok := r.since(6); ok {
		t.Error("a gap before the window was reported covered")
	}
	// The window keeps the newest 4.
	add(16, 15)
	add(20, 16)
	if got, ok := r.since(12); !ok || seqs(got) != "15 16 20 " {
		t.Errorf("after sliding: %q %v", seqs(got), ok)
	}
	if got, ok := r.since(10); !ok || seqs(got) != "12 15 16 20 " {
		t.Errorf("since the slid-out 10 = %q %v", seqs(got), ok)
	}
	if _, ok := r.since(9); ok {
		t.Error("a gap before the window was reported covered")
	}
	// A missed delivery restarts the window.
	add(30, 25)
	if _, ok := r.since(20); ok {
		t.Error("a window across a missed delivery was reported covered")
	}
	if got, ok := r.since(25); !ok || seqs(got) != "30 " {
		t.Errorf("after the restart: %q %v", seqs(got), ok)
	}
	// Deleted messages are not replayed, and the window still covers.
	add(31, 30)
	r.forget("m30")
	if got, ok := r.since(25); !ok || seqs(got) != "31 " {
		t.Errorf("after a deletion: %q %v", seqs(got), ok)
	}
	// A message following the deleted one (prev names it) continues the run.
	r.forget("m31")
	add(32, 31)
	if got, ok := r.since(25); !ok || seqs(got) != "32 " {
		t.Errorf("after deleting the last: %q %v", seqs(got), ok)
	}
}

// TestFanOutLargeRoomCallsEachOnce: a room large enough to be split over
// several goroutines still reaches every session exactly once, and the
// fan-out returns only when all parts are done.
func TestFanOutLargeRoomCallsEachOnce(t *testing.T) {
	for _, n := range []int{0, 1, fanChunk, fanChunk + 1, 5*fanChunk + 7} {
		h := &hub{procs: 4}
		sessions := make([]*session, n)
		index := make(map[*session]int, n)
		for i := range sessions {
			sessions[i] = &session{}
			index[sessions[i]] = i
		}
		calls := make([]atomic.Int32, n)
		h.fanOut(sessions, func(ss *session) { calls[index[ss]].Add(1) })
		for i := range calls {
			if c := calls[i].Load(); c != 1 {
				t.Fatalf("room of %d: session %d called %d times", n, i, c)
			}
		}
	}
}

// received makes ss send a marker op and returns the ops its v2 client
// p receives before it.
func received(t *testing.T, ss *session, p *wstest.Peer) []string {
	t.Helper()
	ss.send(versions.OutPong{Op: "pong", Ref: "mark"})
	_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []string
	for {
		_, frame, err := p.ReadFrame()
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		env, err := versions.ReadEnvelope(frame, versions.V2MaxBatch)
		if err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		for _, op := range env.Ops {
			if strings.Contains(string(op), `"ref":"mark"`) {
				return out
			}
			out = append(out, string(op))
		}
	}
}

// TestPresenceSkippedInLargeRoom: presence announced while a room was
// small reaches nobody once the room has grown past the presence limit.
func TestPresenceSkippedInLargeRoom(t *testing.T) {
	for _, tc := range []struct {
		members int
		want    int // sessions that get it
	}{{5, 4}, {10, 9}, {11, 0}} {
		srv := testServer(versions.Default().All()[1], nil)
		sessions, peers := loopbackSessions(t, srv, tc.members)
		r := channelRoom(srv, sessions)
		ts := &tenantState{srv: srv, id: "acme"}
		st := kaiwa.Settings{PresenceLimit: 10}.WithDefaults()
		ts.settings.Store(&st)
		for i, ss := range sessions {
			ss.tenant = ts
			ss.id.User = fmt.Sprint("u", i)
		}
		srv.hub.channelHandler(r).Presence(&kaiwa.Presence{Tenant: "acme", Channel: "world", User: "u0", Event: "join"})
		got := 0
		for i, ss := range sessions {
			for _, op := range received(t, ss, peers[i]) {
				if strings.Contains(op, `"op":"presence"`) {
					got++
				}
			}
		}
		if got != tc.want {
			t.Errorf("room of %d, limit 10: presence sent %d times, want %d", tc.members, got, tc.want)
		}
	}
}

// TestReplayAheadOfLiveIsNotRepeated: a resume replayed from the stream
// can include messages that have not arrived live yet. Their live copies
// are dropped when they come; what follows goes through, once.
func TestReplayAheadOfLiveIsNotRepeated(t *testing.T) {
	srv := testServer(versions.Default().All()[1], nil)
	sessions, peers := loopbackSessions(t, srv, 2)
	ss, p := sessions[0], peers[0]
	live := func(seq uint64) {
		m := kaiwa.Message{Tenant: "acme", Channel: "world", Seq: seq, Prev: seq - 1}
		ss.deliver(&m, fmt.Appendf(nil, `{"seq":%d}`, seq))
	}
	sent := func() string {
		var seqs []string
		for _, op := range received(t, ss, p) {
			seqs = append(seqs, strings.TrimSuffix(strings.TrimPrefix(op, `{"seq":`), "}"))
		}
		return fmt.Sprint(seqs)
	}
	if chs := ss.openGate(map[string]uint64{"world": 5}); len(chs) != 1 {
		t.Fatalf("gate opened for %v", chs)
	}
	live(6) // arrives live during the replay: held
	live(7)
	// The replay (from the stream) sent 6 to 10; live delivery is at 7.
	ss.closeGate("world", 10)
	if got := sent(); got != "[]" {
		t.Fatalf("held messages the replay covered were sent: %s", got)
	}
	live(8)
	live(9)
	live(10)
	live(11)
	live(12)
	if got := sent(); got != "[11 12]" {
		t.Fatalf("after the gate: %s, want [11 12]", got)
	}
	if ss.replaying.Load() {
		t.Error("still checking live messages after live caught up")
	}

	// A replay that stayed behind live: the held messages after it go
	// out, and nothing is dropped after.
	ss, p = sessions[1], peers[1]
	ss.openGate(map[string]uint64{"world": 5})
	live(6)
	live(7)
	live(8)
	ss.closeGate("world", 6)
	live(9)
	if got := sent(); got != "[7 8 9]" {
		t.Fatalf("replay behind live: %s, want [7 8 9]", got)
	}
	if ss.replaying.Load() {
		t.Error("still checking live messages after the gate closed")
	}
}

// TestRoomSnapshot: a room's snapshot follows its members, made again only
// when asked for after a change, and readers running beside the changes
// see whole snapshots (run with -race).
func TestRoomSnapshot(t *testing.T) {
	r := &room{lock: new(sync.Mutex), members: map[*session]struct{}{}}
	set := func(f func()) {
		r.lock.Lock()
		defer r.lock.Unlock()
		f()
		r.membersChanged()
	}
	a, b := &session{}, &session{}
	if got := r.sessions(); len(got) != 0 || r.size.Load() != 0 {
		t.Fatalf("empty room: %v", got)
	}
	set(func() { r.members[a] = struct{}{}; r.members[b] = struct{}{} })
	first := r.sessions()
	if len(first) != 2 || r.size.Load() != 2 {
		t.Fatalf("two members: %v", first)
	}
	if again := r.sessions(); &again[0] != &first[0] {
		t.Error("an unchanged room made its snapshot again")
	}
	set(func() { delete(r.members, a) })
	if got := r.sessions(); len(got) != 1 || got[0] != b || len(first) != 2 {
		t.Errorf("after a leave: %v (the earlier snapshot %v must not change)", got, first)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, ss := range r.sessions() {
					if ss == nil {
						t.Error("a nil session in a snapshot")
						return
					}
				}
			}
		}()
	}
	for range 1000 {
		ss := &session{}
		set(func() { r.members[ss] = struct{}{} })
	}
	close(stop)
	wg.Wait()
	if n := len(r.sessions()); n != 1001 || r.size.Load() != 1001 {
		t.Errorf("%d sessions after 1,000 joins, want 1001", n)
	}
}
