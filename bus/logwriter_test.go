package bus

import (
	"context"
	"errors"
	"fmt"
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

func TestLogWriterWaitsOutAnOutage(t *testing.T) {
	b := newBus(t, testenv.NATS(t))
	log := &flakyLog{byID: map[string]kaiwa.Message{}, events: map[string]kaiwa.Event{}, down: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &LogWriter{Bus: b, Log: log, Events: log, Batch: 50}
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("log writer: %v", err)
		}
	}()
	defer func() { cancel(); <-done }()

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
