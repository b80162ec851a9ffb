package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// flakyLog fails while down is set, then stores idempotently by id.
type flakyLog struct {
	mu     sync.Mutex
	down   bool
	fails  int
	byID   map[string]kaiwa.Message
	order  []string
	events map[string]kaiwa.Event
}

func (l *flakyLog) AppendMessages(_ context.Context, ms []kaiwa.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		l.fails++
		return errors.New("mysql: connection refused")
	}
	for _, m := range ms {
		if _, dup := l.byID[m.ID]; !dup {
			l.byID[m.ID] = m
			l.order = append(l.order, m.ID)
		}
	}
	return nil
}

func (l *flakyLog) Messages(context.Context, kaiwa.TenantID, kaiwa.MessageQuery) (kaiwa.MessagePage, error) {
	return kaiwa.MessagePage{}, errors.New("not used")
}

func (l *flakyLog) DeleteMessage(context.Context, kaiwa.TenantID, string, string, bool) (bool, error) {
	return false, errors.New("not used")
}

func (l *flakyLog) AppendEvents(_ context.Context, es []kaiwa.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return errors.New("mysql: connection refused")
	}
	for _, e := range es {
		l.events[e.ID] = e
	}
	return nil
}

func (l *flakyLog) Events(context.Context, kaiwa.TenantID, kaiwa.EventQuery) (kaiwa.EventPage, error) {
	return kaiwa.EventPage{}, errors.New("not used")
}

func (l *flakyLog) setDown(v bool) {
	l.mu.Lock()
	l.down = v
	l.mu.Unlock()
}

func (l *flakyLog) count() (msgs, events, fails int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byID), len(l.events), l.fails
}

// runLogWriter runs a log writer of b into log, in batches of 50, until
// the test ends.
func runLogWriter(t *testing.T, b *Bus, log *flakyLog) *LogWriter {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &LogWriter{Bus: b, Log: log, Events: log, Batch: 50}
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("log writer: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func TestLogWriterWaitsOutAnOutage(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	log := &flakyLog{byID: map[string]kaiwa.Message{}, events: map[string]kaiwa.Event{}, down: true}
	w := runLogWriter(t, b, log)
	ctx := t.Context()

	var sent []kaiwa.Message
	for i := range 120 {
		sent = append(sent, publish(t, b, "acme", fmt.Sprint("ch", i%3), fmt.Sprint("m", i)))
		b.Record(kaiwa.Event{Tenant: "acme", Type: kaiwa.EventSay, User: "alice"})
	}
	testenv.Eventually(t, "failed attempts while MySQL is down", 5*time.Second, func() bool { _, _, f := log.count(); return f >= 2 })
	if n, _, _ := log.count(); n != 0 {
		t.Fatalf("%d messages written while down", n)
	}
	log.setDown(false)
	// 120 recorded events, and one say event per (non-system) message.
	testenv.Eventually(t, "every message and event logged", 5*time.Second, func() bool { m, e, _ := log.count(); return m == 120 && e == 240 })
	for _, m := range sent {
		got, ok := log.byID[m.ID]
		if !ok || got.Text != m.Text || got.Seq != m.Seq || got.Tenant != "acme" || got.Channel != m.Channel {
			t.Fatalf("logged %+v for sent %+v", got, m)
		}
		if e, ok := log.events["say-"+m.ID]; !ok || e.Type != kaiwa.EventSay || e.User != "alice" || e.Channel != m.Channel {
			t.Fatalf("say event of %s: %+v", m.ID, e)
		}
	}
	testenv.Eventually(t, "consumer fully acknowledged", 5*time.Second, func() bool { lag, err := w.Lag(ctx); return err == nil && lag == 0 })
}

func TestLogWriterWritesEventBatchesAndSingleEvents(t *testing.T) {
	url := testenv.NATS(t)
	b := newBus(t, url)
	log := &flakyLog{byID: map[string]kaiwa.Message{}, events: map[string]kaiwa.Event{}}
	runLogWriter(t, b, log)
	ctx := t.Context()

	// A storm's worth of one tenant's events, more than one batch holds,
	// and a few of another tenant's.
	const n = 2*maxEventBatch + 88
	for i := range n {
		b.Record(kaiwa.Event{Tenant: "acme", Type: kaiwa.EventConnect, User: fmt.Sprint("p", i)})
	}
	b.Record(kaiwa.Event{Tenant: "beta", Type: kaiwa.EventConnect, User: "b1"})
	b.Record(kaiwa.Event{Tenant: "beta", Type: kaiwa.EventDisconnect, User: "b1"})
	// An event as the release before records it: alone, on the event
	// stream.
	single := []byte(`{"tenant":"acme","type":"kick","user":"troll","ts":1700000000000}`)
	if err := b.nc.Publish(b.subj.evlog("acme"), single); err != nil {
		t.Fatal(err)
	}
	// A batch is its subject's tenant's, whatever its body says.
	forged := []byte(`[{"tenant":"acme","type":"kick","user":"forged","ts":1700000000000}]`)
	if err := b.nc.Publish(b.subj.evb("beta"), forged); err != nil {
		t.Fatal(err)
	}
	// A process that stops at once still sends what it recorded.
	last := newBus(t, url)
	last.Record(kaiwa.Event{Tenant: "acme", Type: kaiwa.EventDisconnect, User: "last"})
	if err := last.Close(); err != nil {
		t.Fatal(err)
	}

	want := n + 2 + 1 + 1 + 1
	testenv.Eventually(t, "every event logged", 10*time.Second, func() bool { _, e, _ := log.count(); return e == want })
	log.mu.Lock()
	users := map[string]kaiwa.Event{}
	for id, e := range log.events {
		if e.ID != id || e.TS == 0 {
			t.Errorf("event %s: %+v", id, e)
		}
		users[string(e.Tenant)+"/"+e.User+"/"+e.Type] = e
	}
	log.mu.Unlock()
	if len(users) != want {
		t.Errorf("%d distinct events logged of %d", len(users), want)
	}
	for _, k := range []string{"acme/p0/connect", fmt.Sprintf("acme/p%d/connect", n-1), "beta/b1/connect", "beta/b1/disconnect", "acme/troll/kick", "beta/forged/kick", "acme/last/disconnect"} {
		if _, ok := users[k]; !ok {
			t.Errorf("no event %s", k)
		}
	}
	if e := users["acme/troll/kick"]; !strings.HasPrefix(e.ID, "e"+b.evEpoch+"-") || strings.Count(e.ID, "-") != 1 {
		t.Errorf("the single event's id %q", e.ID)
	}
	if e := users["acme/p0/connect"]; !strings.HasPrefix(e.ID, "e"+b.evbEpoch+"-") || !strings.HasSuffix(e.ID, "-0") {
		t.Errorf("the first batched event's id %q", e.ID)
	}
	// The events came in a few stream messages, not one each.
	info, err := b.js.Stream(ctx, b.cfg.EventBatchStream)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := st.State.Msgs; msgs < 3 || msgs > 20 {
		t.Errorf("%d events of a moment took %d stream messages", n+4, msgs)
	}
	if d := b.DroppedEvents(); d != 0 {
		t.Errorf("%d events dropped", d)
	}
}
