package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/client"
)

// apiPlan returns a plan of two API publishers (one per channel) at rate
// messages per second each, posting to api.
func apiPlan(api string, rate float64, conc int) Plan {
	return Plan{
		Scenario: ScenarioFanout, URLs: []string{"ws://127.0.0.1:1/v1/ws"},
		Conns: []PlanConn{{Index: 0, Group: 0}, {Index: 1, Group: 1}, {Index: 2, Group: 0}, {Index: 3, Group: 1}},
		// The clients the publishers are planned beside never connect:
		// API publishers post all the same.
		Groups: []string{"bench.t.0", "bench.t.1"}, NumGroups: 2,
		Pubs: []PlanPub{{ID: 0, Conn: 0}, {ID: 1, Conn: 1}}, NumPubs: 2, PubGroups: []int{0, 1},
		Seqs: 1000, PubRates: []float64{rate}, Payload: 100,
		PublishVia: PublishAPI, API: &APITarget{URL: api, Key: "bench:k", Concurrency: conc},
	}
}

// posted is one request a fake API received.
type posted struct {
	ch string
	p  Payload
}

func TestAPIPublisherPacesAndAccounts(t *testing.T) {
	var (
		mu  sync.Mutex
		got []posted
		bad []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, ok := strings.CutPrefix(r.URL.Path, "/v1/api/channels/")
		ch, ok2 := strings.CutSuffix(ch, "/messages")
		var body struct {
			Data json.RawMessage `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		err := json.Unmarshal(b, &body)
		p, perr := ParsePayload(body.Data)
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodPost || !ok || !ok2 || r.Header.Get("Authorization") != "Bearer bench:k" ||
			r.Header.Get("Content-Type") != "application/json" || err != nil || perr != nil {
			bad = append(bad, r.Method+" "+r.URL.Path+" "+string(b))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = append(got, posted{ch: ch, p: p})
		switch {
		case p.P == 0 && p.N%4 == 3:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":"rate_limited","message":"over the API rate"}}`)
		case p.P == 1 && p.N == 10:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "oops")
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"m1","seq":1,"ch":"`+ch+`"}`)
		}
	}))
	defer srv.Close()

	w, err := newWorker(apiPlan(srv.URL+"/v1/api/", 50, 4))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	start := time.Now().Add(50 * time.Millisecond)
	win := Window{Start: start, End: start.Add(time.Second)}
	w.publish(context.Background(), win)

	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("malformed requests: %q", bad)
	}
	// 50 msg/s for one second: 50 messages of each publisher, each once,
	// to its group's channel, stamped with when it was sent.
	seen := map[[2]int]bool{}
	for _, g := range got {
		if want := "bench.t." + string(rune('0'+g.p.P)); g.ch != want {
			t.Fatalf("publisher %d posted to %s, want %s", g.p.P, g.ch, want)
		}
		if seen[[2]int{g.p.P, g.p.N}] {
			t.Fatalf("message %d of publisher %d posted twice", g.p.N, g.p.P)
		}
		seen[[2]int{g.p.P, g.p.N}] = true
		if sent := time.Unix(0, g.p.T); sent.Before(start) || sent.After(win.End.Add(time.Second)) {
			t.Fatalf("message stamped %v, the window is %v to %v", sent, start, win.End)
		}
	}
	if len(got) != 100 || w.sent.Load() != 100 {
		t.Fatalf("%d posts received, %d counted as sent, want 100", len(got), w.sent.Load())
	}
	// Only 2xx answers acknowledge; the rest are counted by kind.
	if a0, a1 := w.ledger.AckedCount(0), w.ledger.AckedCount(1); a0 != 50-12 || a1 != 49 {
		t.Fatalf("acknowledged %d and %d, want 38 and 49", a0, a1)
	}
	tal := w.ledger.Tally()
	if tal.Pubs[0].Errors != 12 || tal.Pubs[1].Errors != 1 || w.errs.Load() != 13 {
		t.Fatalf("ledger errors %d and %d, worker %d", tal.Pubs[0].Errors, tal.Pubs[1].Errors, w.errs.Load())
	}
	want := map[string]uint64{"HTTP 429 rate_limited": 12, "HTTP 500": 1}
	if len(w.pubErrs[0]) != len(want) {
		t.Fatalf("publish errors %v, want %v", w.pubErrs[0], want)
	}
	for k, n := range want {
		if w.pubErrs[0][k] != n {
			t.Fatalf("publish errors %v, want %v", w.pubErrs[0], want)
		}
	}
	if n := w.ack[0].Count(); n != 87 {
		t.Fatalf("%d acknowledgement latencies recorded, want 87", n)
	}
}

func TestAPIPublisherBoundsRequestsInFlight(t *testing.T) {
	var inFlight, most atomic.Int64
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		storeMax(&most, n)
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	// 2 × 100 msg/s of 20 ms requests want 4 in flight; 3 are allowed:
	// the publishers fall behind, and say so.
	w, err := newWorker(apiPlan(srv.URL, 100, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	start := time.Now().Add(20 * time.Millisecond)
	w.publish(context.Background(), Window{Start: start, End: start.Add(500 * time.Millisecond)})
	if m := most.Load(); m > 3 || m < 2 {
		t.Fatalf("at most %d requests in flight, want 3", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) > 3 {
		t.Fatalf("%d connections for 3 requests in flight: they are not kept alive", len(conns))
	}
	if late := time.Duration(w.lateness[0].Load()); late < 20*time.Millisecond {
		t.Fatalf("publishers %v behind schedule, want them late", late)
	}
	if w.sent.Load() == 0 || w.ledger.AckedCount(0)+w.ledger.AckedCount(1) != w.sent.Load() {
		t.Fatalf("sent %d, acknowledged %d + %d", w.sent.Load(), w.ledger.AckedCount(0), w.ledger.AckedCount(1))
	}
}

func TestAPIPublisherCountsFailedRequests(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	w, err := newWorker(apiPlan(url, 20, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	start := time.Now()
	w.publish(context.Background(), Window{Start: start, End: start.Add(200 * time.Millisecond)})
	sent, errs := w.sent.Load(), w.errs.Load()
	if sent < 6 || errs != sent || w.ledger.AckedCount(0)+w.ledger.AckedCount(1) != 0 {
		t.Fatalf("sent %d, failed %d, acknowledged %d", sent, errs, w.ledger.AckedCount(0)+w.ledger.AckedCount(1))
	}
	var counted uint64
	for kind, n := range w.pubErrs[0] {
		if !strings.Contains(kind, "refused") {
			t.Errorf("failure counted as %q", kind)
		}
		counted += n
	}
	if counted != errs {
		t.Fatalf("%d failures counted by kind, %d in all", counted, errs)
	}
}

// relayAPI serves a stand-in for the tenant API in front of the bare
// server: each POST /v1/api/channels/{ch}/messages is said in ch by one
// connection of the relay's own, which joins no channel, as a game server
// is no member of its channels. It answers 201 once the bare server has
// acknowledged the message.
func relayAPI(t *testing.T, wsURL string) string {
	t.Helper()
	c, err := client.Dial(context.Background(), wsURL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch, _ := strings.CutPrefix(r.URL.Path, "/v1/api/channels/")
		ch, ok := strings.CutSuffix(ch, "/messages")
		var body struct {
			Data json.RawMessage `json:"data"`
		}
		if r.Method != http.MethodPost || !ok || json.NewDecoder(r.Body).Decode(&body) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		id, err := c.Say(r.Context(), ch, "", body.Data)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"`+id+`","ch":"`+ch+`"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1/api"
}

func TestFanoutPublishedThroughTheAPI(t *testing.T) {
	url, _ := startBare(t)
	cfg := quick(ScenarioFanout, url)
	cfg.PublishVia = PublishAPI
	cfg.API = APITarget{URL: relayAPI(t, url), Key: "bench:k", Concurrency: 8}
	r := runOne(t, cfg)
	checkDelivery(t, r)
	// The publishers are no clients: each of the 10 clients of a channel
	// is due every message, and none echoes back to a sender.
	if r.Expected != 10*r.Acked || r.Publish != PublishAPI {
		t.Fatalf("expected %d deliveries of %d messages (want 10 each), publish %q", r.Expected, r.Acked, r.Publish)
	}
	if r.Sent < 100 || r.Sent > 135 {
		t.Fatalf("sent %d messages at 80/s in 1.5 s", r.Sent)
	}
	line, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(line), `"publish":"api"`) {
		t.Fatalf("JSON line %s: %v", line, err)
	}
	var sum strings.Builder
	r.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "publishers posting through the API") {
		t.Fatalf("summary does not say how they published:\n%s", sum.String())
	}
}

func TestRoomPublishedThroughTheAPIInWorkerProcesses(t *testing.T) {
	url, _ := startBare(t)
	t.Setenv(workerEnv, "1")
	cfg := quick(ScenarioRoom, url)
	cfg.Conns, cfg.Rate = 30, 20
	cfg.Processes = 2
	cfg.StartWorker = ExecWorker(os.Stderr, os.Args[0], "-test.run=^$")
	cfg.PublishVia = PublishAPI
	cfg.API = APITarget{URL: relayAPI(t, url), Key: "bench:k"}
	r := runOne(t, cfg)
	// The workers got the API in their plans: everyone in the room got
	// every message.
	checkDelivery(t, r)
	if r.Workers != 2 || r.Expected != 30*r.Acked || r.Publish != PublishAPI {
		t.Fatalf("workers %d, expected %d for %d messages, publish %q", r.Workers, r.Expected, r.Acked, r.Publish)
	}
}

func TestGatherBatches(t *testing.T) {
	jobs := make(chan apiPost)
	batches := make(chan []apiPost, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		gatherBatches(jobs, batches, 3, 50*time.Millisecond)
		close(batches)
	}()
	// Seven quick posts: two full batches, then one that goes when its
	// linger is over.
	for i := range 7 {
		jobs <- apiPost{n: int64(i)}
	}
	var sizes []int
	var seen []int64
	for len(seen) < 7 {
		b := <-batches
		sizes = append(sizes, len(b))
		for _, j := range b {
			seen = append(seen, j.n)
		}
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("batch sizes %v, want [3 3 1]", sizes)
	}
	if !slices.Equal(seen, []int64{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("posts %v, want them in order", seen)
	}
	// What is gathered when the posts end goes at once.
	jobs <- apiPost{n: 7}
	close(jobs)
	if b := <-batches; len(b) != 1 || b[0].n != 7 {
		t.Errorf("last batch %v", b)
	}
	<-done
}
