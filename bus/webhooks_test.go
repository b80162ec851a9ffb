package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/egress"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// receiver is a tenant's webhook endpoint: it checks every delivery's
// signature, fails the first attempts of each as told, and keeps what it
// accepted by idempotency key.
type receiver struct {
	t      testing.TB
	secret string
	failN  int
	delay  time.Duration // before each answer

	mu       sync.Mutex
	attempts map[string]int
	accepted map[string]json.RawMessage
	types    map[string]int
	bad      int
}

func newReceiver(t testing.TB, secret string, failN int) (*receiver, string) {
	r := &receiver{t: t, secret: secret, failN: failN, attempts: map[string]int{}, accepted: map[string]json.RawMessage{}, types: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/kaiwa"
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	time.Sleep(r.delay)
	ts := req.Header.Get("Kaiwa-Timestamp")
	sec, _ := strconv.ParseInt(ts, 10, 64)
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Header.Get("Kaiwa-Signature") != kaiwa.SignWebhook(r.secret, ts, body) || time.Since(time.Unix(sec, 0)) > 5*time.Minute {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("Kaiwa-Delivery-Id")
	r.attempts[id]++
	if r.attempts[id] <= r.failN {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if _, dup := r.accepted[id]; !dup {
		r.types[req.Header.Get("Kaiwa-Event")]++
	}
	r.accepted[id] = body
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) count() (accepted, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted), r.bad
}

func (r *receiver) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.accepted[id]
	return ok
}

// hookEnv is a stack with the API tier's core for webhooks.
type hookEnv struct {
	*teststack.Stack
	core *kaiwa.Core
}

func newHookEnv(t *testing.T) *hookEnv {
	s := teststack.New(t)
	return &hookEnv{Stack: s, core: &kaiwa.Core{
		Tenants: s.Store, Webhooks: s.Store, URLs: egress.Policy{AllowPrivate: true}, Bus: s.API, Events: s.API,
	}}
}

// dispatch runs a webhook dispatcher on a bus connection of its own, as
// an API process would, until the returned stop is called.
func (e *hookEnv) dispatch(t *testing.T, offline *bus.OfflineWatcher) (stop func()) {
	return e.dispatchWith(t, offline, nil)
}

// dispatchWith is dispatch with the dispatcher's config adjusted by tune.
func (e *hookEnv) dispatchWith(t *testing.T, offline *bus.OfflineWatcher, tune func(*bus.WebhookDispatcher)) (stop func()) {
	b := e.Connect("api-hooks")
	ctx, cancel := context.WithCancel(context.Background())
	d := &bus.WebhookDispatcher{
		Bus: b, Store: e.Store, Client: egress.Policy{AllowPrivate: true}.Client(5 * time.Second),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, AckWait: 2 * time.Second,
		Resync: 200 * time.Millisecond, Offline: offline, Logger: slog.New(slog.DiscardHandler),
	}
	if tune != nil {
		tune(d)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			b.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestWebhookGetsEveryMessageThroughFailuresAndARestart(t *testing.T) {
	e := newHookEnv(t)
	ctx := t.Context()
	const secret = "a-webhook-secret-of-the-game"
	rcv, url := newReceiver(t, secret, 2)
	w, err := e.core.AddWebhook(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.Webhook{URL: url, Secret: secret, Events: []string{"message", "moderation"}})
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant's endpoint: it must receive nothing of acme's.
	if _, err := e.Store.CreateTenant(ctx, "other", "Other"); err != nil {
		t.Fatal(err)
	}
	otherRcv, otherURL := newReceiver(t, secret, 0)
	if _, err := e.core.AddWebhook(ctx, kaiwa.ActorAPI, "other", kaiwa.Webhook{URL: otherURL, Secret: secret, Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	stop := e.dispatch(t, nil)
	var ids []string
	for i := range 20 {
		ids = append(ids, "msg-"+e.Publish("world", fmt.Sprintf("m%d", i)).ID)
	}
	testenv.Eventually(t, "some deliveries", 10*time.Second, func() bool { n, _ := rcv.count(); return n >= 3 })
	stop() // the API process's dispatcher dies, deliveries in flight
	for i := range 10 {
		ids = append(ids, "msg-"+e.Publish("world", fmt.Sprintf("while down %d", i)).ID)
	}
	// A moderation event goes too (from the event stream).
	mod := &kaiwa.Core{Sanctions: e.Store, Bus: e.API, Events: e.API}
	if err := mod.Kick(ctx, kaiwa.ActorAPI, e.Tenant, "troll", "spam"); err != nil {
		t.Fatal(err)
	}
	e.dispatch(t, nil) // another process takes over
	testenv.Eventually(t, "every message delivered", 20*time.Second, func() bool {
		for _, id := range ids {
			if !rcv.has(id) {
				return false
			}
		}
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.types["kick"] == 1
	})
	n, bad := rcv.count()
	if n != len(ids)+1 || bad != 0 {
		t.Errorf("%d distinct deliveries (want %d), %d with a bad signature", n, len(ids)+1, bad)
	}
	var first struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Tenant  string `json:"tenant"`
		Message struct {
			Ch, Text string
		} `json:"message"`
	}
	rcv.mu.Lock()
	_ = json.Unmarshal(rcv.accepted[ids[0]], &first)
	rcv.mu.Unlock()
	if first.ID != ids[0] || first.Type != "message" || first.Tenant != string(e.Tenant) || first.Message.Ch != "world" || first.Message.Text != "m0" {
		t.Errorf("delivery %+v", first)
	}
	if n, _ := otherRcv.count(); n != 0 {
		t.Errorf("another tenant's webhook received %d deliveries", n)
	}
	// Attempts and failures are on record.
	testenv.Eventually(t, "attempts recorded", 10*time.Second, func() bool {
		ds, err := e.Store.Deliveries(ctx, e.Tenant, w.ID, 500)
		if err != nil {
			t.Fatal(err)
		}
		failed, final := 0, map[string]bool{}
		for _, d := range ds {
			if d.Status == 500 && !d.Final && d.Error != "" {
				failed++
			}
			if d.Status == 204 && d.Final {
				final[d.ID] = true
			}
		}
		for _, id := range ids {
			if !final[id] {
				return false
			}
		}
		// Attempts in flight when the first dispatcher died are not on
		// record; the others are.
		if failed < len(ids) {
			t.Logf("%d failed attempts on record of %d records", failed, len(ds))
		}
		return failed >= len(ids)
	})
	if _, err := e.Store.Deliveries(ctx, "other", w.ID, 10); !kaiwa.IsCode(err, kaiwa.CodeNotFound) {
		t.Errorf("another tenant reads the deliveries: %v", err)
	}
}

func TestWebhookURLsMustBePublic(t *testing.T) {
	e := newHookEnv(t)
	ctx := t.Context()
	strict := &kaiwa.Core{Webhooks: e.Store, URLs: egress.Policy{}, Bus: e.API, Events: e.API}
	for _, u := range []string{
		"https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://169.254.169.254/latest", "https://[::1]/x",
		"https://localhost/x", "http://example.com/x", "https://user:pw@example.com/x", "ftp://example.com/x", "/relative",
	} {
		_, err := strict.AddWebhook(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.Webhook{URL: u, Events: []string{"message"}})
		testenv.WantCode(t, err, kaiwa.CodeBadRequest)
	}
	// The operator's flag lets tests reach their loopback receivers.
	if _, err := e.core.AddWebhook(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.Webhook{URL: "http://127.0.0.1:9/x", Events: []string{"message"}}); err != nil {
		t.Errorf("with the operator's flag: %v", err)
	}
}

func TestOfflineMessageWebhookOncePerUserWithoutSession(t *testing.T) {
	e := newHookEnv(t)
	ctx := t.Context()
	const secret = "a-webhook-secret-of-the-game"
	rcv, url := newReceiver(t, secret, 0)
	if _, err := e.core.AddWebhook(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.Webhook{URL: url, Secret: secret, Events: []string{kaiwa.EventOfflineMessage}}); err != nil {
		t.Fatal(err)
	}
	uaURL, _ := e.UA("v1", nil)
	e.dispatch(t, &bus.OfflineWatcher{
		Online: func(ctx context.Context, t kaiwa.TenantID, user string) (bool, error) {
			p, err := e.API.UserOnline(ctx, t, user, false)
			return p.Online, err
		},
		Notice: func(t kaiwa.TenantID, user, ch, id, from string) error {
			return e.core.NoticeOffline(kaiwa.ActorAPI, t, user, ch, id, from)
		},
	})
	carol := dialUA(t, uaURL, e.Token("carol", []string{"*"}, []string{"*"}))
	alice := dialUA(t, uaURL, e.Token("alice", []string{"*"}, []string{"*"}))
	// The watcher's consumer starts with the messages after its creation:
	// wait until it is there, with a notice for a user of its own.
	testenv.Eventually(t, "the watcher is up", 10*time.Second, func() bool {
		if _, _, err := alice.DM(ctx, "warmup", "are you there", nil); err != nil {
			t.Fatal(err)
		}
		n, _ := rcv.count()
		return n > 0
	})
	// Three DMs to bob, who is offline, and one to carol, who is not; an
	// inbox message to dave, offline.
	for i := range 3 {
		if _, _, err := alice.DM(ctx, "bob", fmt.Sprintf("psst %d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := alice.DM(ctx, "carol", "hi", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.API.Publish(ctx, kaiwa.Message{Tenant: e.Tenant, Channel: kaiwa.Inbox("dave"), Text: "reward", System: true}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "notices for bob and dave", 10*time.Second, func() bool { n, _ := rcv.count(); return n >= 3 })
	// A moment more: nothing else may come.
	time.Sleep(700 * time.Millisecond)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	users := map[string]int{}
	for _, body := range rcv.accepted {
		var p struct {
			Type  string
			Event kaiwa.Event
		}
		_ = json.Unmarshal(body, &p)
		if p.Type != kaiwa.EventOfflineMessage {
			t.Errorf("delivery of type %q", p.Type)
		}
		users[p.Event.User]++
	}
	if len(users) != 3 || users["bob"] != 1 || users["dave"] != 1 || users["warmup"] != 1 {
		t.Errorf("offline notices per user %v, want bob and dave once each (carol has a session)", users)
	}
	_ = carol
}

func TestWebhookBatchOfEventsResumesAfterWhatWasDelivered(t *testing.T) {
	e := newHookEnv(t)
	ctx := t.Context()
	const secret = "a-webhook-secret-of-the-game"
	rcv, url := newReceiver(t, secret, 1) // every delivery fails once
	if _, err := e.core.AddWebhook(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.Webhook{URL: url, Secret: secret, Events: []string{"moderation"}}); err != nil {
		t.Fatal(err)
	}
	e.dispatch(t, nil)
	// Three events in one message of the event batch stream, as a process
	// records a moment's events, with one the webhook does not want; and
	// one alone on the event stream, as the release before records it.
	nc := e.API.Conn()
	batch := `[{"type":"kick","user":"u1","ts":1},{"type":"connect","user":"u2","ts":2},{"type":"mute","user":"u3","ts":3},{"type":"ban","user":"u4","ts":4}]`
	if err := nc.Publish("kaiwa.acme.evb", []byte(batch)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("kaiwa.acme.evlog", []byte(`{"type":"kick","user":"u5","ts":5}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "four deliveries", 10*time.Second, func() bool { n, _ := rcv.count(); return n == 4 })
	time.Sleep(300 * time.Millisecond) // nothing more may come
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	users := map[string]int{}
	for id, body := range rcv.accepted {
		var p struct{ Event kaiwa.Event }
		_ = json.Unmarshal(body, &p)
		users[p.Event.User] = rcv.attempts[id]
		if p.Event.Tenant != e.Tenant || "ev-"+p.Event.ID != id {
			t.Errorf("delivery %s: %+v", id, p.Event)
		}
	}
	// Each was sent twice (it failed once): a delivery that succeeded is
	// not sent again when the batch is tried again for the next one.
	want := map[string]int{"u1": 2, "u3": 2, "u4": 2, "u5": 2}
	if fmt.Sprint(users) != fmt.Sprint(want) {
		t.Errorf("attempts by user %v, want %v", users, want)
	}
}

func TestWebhookBatchLongerThanTheAckWaitIsDeliveredOnce(t *testing.T) {
	e := newHookEnv(t)
	ctx := t.Context()
	const secret = "a-webhook-secret-of-the-game"
	rcv, url := newReceiver(t, secret, 0)
	rcv.delay = 150 * time.Millisecond
	if _, err := e.core.AddWebhook(ctx, kaiwa.ActorAPI, e.Tenant, kaiwa.Webhook{URL: url, Secret: secret, Events: []string{"moderation"}}); err != nil {
		t.Fatal(err)
	}
	// Five deliveries of 150 ms in one batch: 750 ms against an ack wait
	// of 600 ms. The dispatcher tells the stream it is still at work, so
	// that the batch is not handed to another worker meanwhile.
	e.dispatchWith(t, nil, func(d *bus.WebhookDispatcher) { d.AckWait, d.Workers = 600*time.Millisecond, 4 })
	nc := e.API.Conn()
	batch := `[{"type":"kick","user":"u1","ts":1},{"type":"kick","user":"u2","ts":2},{"type":"kick","user":"u3","ts":3},{"type":"kick","user":"u4","ts":4},{"type":"kick","user":"u5","ts":5}]`
	if err := nc.Publish("kaiwa.acme.evb", []byte(batch)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "five deliveries", 10*time.Second, func() bool { n, _ := rcv.count(); return n == 5 })
	time.Sleep(time.Second) // a redelivery would come within this
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for id, n := range rcv.attempts {
		if n != 1 {
			t.Errorf("delivery %s sent %d times", id, n)
		}
	}
}
