package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
)

// chatter is a v2 client that keeps saying messages and follows reconnect
// requests, resuming where it left off.
type chatter struct {
	c     *cluster
	user  string
	ch    string
	token string
	n     int // messages to say

	mu       sync.Mutex
	got      map[string]client.Message // by id
	order    []client.Message
	dupes    int
	acked    []string
	dials    int
	unrecov  int
	lastSeqs map[string]uint64
}

func (ch *chatter) record(ev client.Event) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch ev.Op {
	case "msg":
		if _, ok := ch.got[ev.Msg.ID]; ok {
			ch.dupes++
			return
		}
		ch.got[ev.Msg.ID] = *ev.Msg
		ch.order = append(ch.order, *ev.Msg)
	case "resumed":
		if !ev.Recovered {
			ch.unrecov++
		}
	}
}

// dial connects (retrying while servers restart) with resume from what
// the last connection delivered.
func (ch *chatter) dial(ctx context.Context) (*client.Conn, error) {
	for {
		ch.mu.Lock()
		resume := ch.lastSeqs
		ch.dials++
		ch.mu.Unlock()
		var o client.Options
		o.Token = ch.token
		if len(resume) > 0 {
			o.Resume = resume
		}
		conn, err := ch.c.dialV("v2", o)
		if err == nil {
			if len(resume) == 0 {
				if err := conn.Join(ctx, ch.ch); err != nil {
					conn.Close()
					return nil, err
				}
			}
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial: %w (last error %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run keeps the chatter connected until ctx ends: it says its n messages
// (closing sent when done) and reconnects whenever the server asks. joined
// is closed once the first connection has joined; start gates the saying.
func (ch *chatter) run(ctx context.Context, joined chan<- struct{}, start <-chan struct{}, sent chan<- struct{}) error {
	i := 0
	first := true
	for ctx.Err() == nil {
		conn, err := ch.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if first {
			first = false
			close(joined)
			<-start
		}
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			for ev := range conn.Events() {
				ch.record(ev)
			}
		}()
		for i < ch.n {
			cid := fmt.Sprintf("%s-%d", ch.user, i)
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			id, _, err := conn.SayCID(sctx, ch.ch, fmt.Sprint(ch.user, " says ", i), nil, cid)
			cancel()
			if err == nil {
				ch.mu.Lock()
				ch.acked = append(ch.acked, id)
				ch.mu.Unlock()
				i++
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if kaiwa.IsCode(err, kaiwa.CodeRateLimited) {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ke *kaiwa.Error
			if errors.As(err, &ke) && ke.Code != kaiwa.CodeUnavailable {
				return fmt.Errorf("say %s: %w", cid, err)
			}
			break // the connection is going away: reconnect and resend the same cid
		}
		if i == ch.n && sent != nil {
			close(sent)
			sent = nil
		}
		if i == ch.n {
			// Done saying: stay connected, reading, until the connection
			// ends (a restart) or the test does.
			select {
			case <-conn.Done():
			case <-ctx.Done():
			}
		}
		conn.Close()
		<-readerDone
		ch.mu.Lock()
		ch.lastSeqs = conn.LastSeqs()
		ch.mu.Unlock()
	}
	return nil
}

func TestRollingRestartLosesNothing(t *testing.T) {
	c := newCluster(t, clusterOpts{uaArgs: []string{"--drain-window", "1s"}})
	acme := c.tenant("acme")
	c.settings("acme", `{"rate_ops": 100, "rate_burst": 100}`)
	rooms := []string{"room.1", "room.2"}
	for _, r := range rooms {
		c.must(201, "PUT", "/channels/"+r, acme, map[string]any{"kind": "open"})
	}
	var chatters []*chatter
	for i := range 6 {
		user := fmt.Sprint("player", i)
		chatters = append(chatters, &chatter{
			c: c, user: user, ch: rooms[i%2], n: 60, got: map[string]client.Message{},
			token: c.token(acme, user, []string{"*"}, []string{"*"}),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	errs := make(chan error, len(chatters))
	start := make(chan struct{})
	var joined, sent []chan struct{}
	for _, ch := range chatters {
		j, s := make(chan struct{}), make(chan struct{})
		joined, sent = append(joined, j), append(sent, s)
		go func() { errs <- ch.run(ctx, j, start, s) }()
	}
	for _, j := range joined {
		select {
		case <-j:
		case err := <-errs:
			t.Fatal(err)
		}
	}
	close(start)
	// While they chat, drain and replace every v2 UA process, one at a time.
	time.Sleep(300 * time.Millisecond)
	for i := range c.uas["v2"] {
		c.uas["v2"][i].stop(t, 20*time.Second)
		c.uas["v2"][i] = c.startUA("v2", i)
		time.Sleep(300 * time.Millisecond)
	}
	for _, s := range sent {
		select {
		case <-s:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("the chatters did not finish saying their messages")
		}
	}
	// Every client ends up with every acknowledged message of its channel
	// exactly once, in the channel's order.
	want := map[string][]string{}
	for _, ch := range chatters {
		ch.mu.Lock()
		want[ch.ch] = append(want[ch.ch], ch.acked...)
		ch.mu.Unlock()
	}
	for _, ch := range chatters {
		missing := func() []string {
			ch.mu.Lock()
			defer ch.mu.Unlock()
			var out []string
			for _, id := range want[ch.ch] {
				if _, ok := ch.got[id]; !ok {
					out = append(out, id)
				}
			}
			return out
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(missing()) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if m := missing(); len(m) > 0 {
			ch.mu.Lock()
			var seqs []string
			for _, x := range ch.order {
				seqs = append(seqs, fmt.Sprint(x.Seq, "/", x.Prev))
			}
			ch.mu.Unlock()
			t.Errorf("%s lacks %d acknowledged messages %v; it received seq/prev %v (dials %d)", ch.user, len(m), m, seqs, ch.dials)
			continue
		}
		ch.mu.Lock()
		if ch.dupes != 0 {
			t.Errorf("%s received %d duplicates", ch.user, ch.dupes)
		}
		if ch.unrecov != 0 {
			t.Errorf("%s had %d unrecovered resumes", ch.user, ch.unrecov)
		}
		var seqs []uint64
		for _, m := range ch.order {
			if m.Ch == ch.ch {
				seqs = append(seqs, m.Seq)
			}
		}
		if !slices.IsSorted(seqs) {
			t.Errorf("%s received its channel out of order: %v", ch.user, seqs)
		}
		if len(seqs) != len(want[ch.ch]) {
			t.Errorf("%s received %d messages of %s, %d were acknowledged", ch.user, len(seqs), ch.ch, len(want[ch.ch]))
		}
		if ch.dials < 2 {
			t.Errorf("%s never reconnected: the restart did not reach it", ch.user)
		}
		ch.mu.Unlock()
	}
	cancel()
	for range chatters {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
