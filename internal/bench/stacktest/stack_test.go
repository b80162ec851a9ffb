package stacktest

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/apiserver"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/internal/bench"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/tenants"
	"github.com/kaiwa-chat/kaiwa/tenants/ngword"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"

	_ "github.com/go-sql-driver/mysql"
)

const tenant kaiwa.TenantID = "bench"

// stack is a UA with its whole backend, and the provisioner the load tool
// sets up through.
type stack struct {
	apiURL   string // the tenant API, .../v1/api
	apiKey   string
	url      string // the v1 UA
	url2     string // the v2 UA
	ua       *ua.Server
	setup    *bench.StoreSetup
	logCount func(ctx context.Context, prefix string) (uint64, error)
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.MySQL(t)
	store, err := tenants.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	apiKey, err := store.CreateTenant(ctx, tenant, "Benchmarks")
	if err != nil {
		t.Fatal(err)
	}
	natsURL := testenv.NATS(t)
	connect := func(name string) *bus.Bus {
		b, err := bus.Connect(ctx, bus.Config{URL: natsURL, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	api := connect("api")
	core := &kaiwa.Core{
		Tenants: store, Tokens: store, Channels: store, Log: store, NG: store, Sanctions: store,
		Bus: api, Events: api,
	}
	sub, err := api.ServeDirectory(store, core.Moderation(kaiwa.ActorUA), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	apiHS := httptest.NewServer(apiserver.NewServer(apiserver.Config{
		Core: core, Tenants: store, Channels: store, Log: store, NG: store, Sanctions: store,
		Events: store, Version: "v1",
		Ready: func(context.Context) error { return nil },
	}))
	t.Cleanup(apiHS.Close)
	startUA := func(v versions.Version) (string, *ua.Server) {
		b := connect("ua-" + v.Name)
		dir := b.Directory()
		srv, err := ua.New(ua.Config{
			Version: v, Directory: dir, Moderation: dir, Bus: b, Recorder: b,
			CompileNG: func(l kaiwa.NGList) (ua.Matcher, error) { return ngword.Compile(l.Words, l.Allow) },
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			hs.Close()
		})
		return "ws" + strings.TrimPrefix(hs.URL, "http") + "/" + v.Name + "/ws", srv
	}
	v1, _ := versions.Default().Get("v1")
	v2, _ := versions.Default().Get("v2")
	url, srv := startUA(v1)
	url2, _ := startUA(v2)
	// The log writer, as the API process runs it. It starts after every
	// bus connection: nats-server 2.15.2 races (under -race) between the
	// stream update a connection makes and the writer's consumer creation.
	lctx, stopLog := context.WithCancel(ctx)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		lw := &bus.LogWriter{Bus: api, Log: store, Events: store}
		if err := lw.Run(lctx); err != nil && lctx.Err() == nil {
			t.Errorf("log writer: %v", err)
		}
	}()
	t.Cleanup(func() { stopLog(); <-logDone })
	return &stack{
		apiURL:   apiHS.URL + "/v1/api",
		apiKey:   apiKey,
		url:      url,
		url2:     url2,
		ua:       srv,
		setup:    &bench.StoreSetup{Tenant: tenant, Tokens: store, Channels: store, Concurrency: 8},
		logCount: bench.SQLLogCount(db, tenant),
	}
}

func (s *stack) config(scenario string) bench.Config {
	return bench.Config{
		Scenario: scenario, URLs: []string{s.url}, Setup: s.setup,
		Conns: 40, Channels: 4, Rate: 40,
		Duration: 1500 * time.Millisecond, Settle: 200 * time.Millisecond, Drain: 5 * time.Second,
		Quiet: 100 * time.Millisecond, Deadline: time.Minute,
		PIDs: []bench.NamedPID{{Name: "ua", PID: os.Getpid()}},
	}
}

// runOne runs a one-window configuration.
func runOne(t *testing.T, cfg bench.Config) *bench.Result {
	t.Helper()
	rs, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d results, want one window", len(rs))
	}
	return rs[0]
}

// checkExact asserts that every acknowledged message reached every client
// due to receive it, once.
func checkExact(t *testing.T, r *bench.Result) {
	t.Helper()
	if r.Connected != r.Conns {
		t.Fatalf("%d of %d connected: %v", r.Connected, r.Conns, r.ConnectErrors)
	}
	if r.Sent == 0 || r.Acked != r.Sent {
		t.Fatalf("sent %d, acked %d: %v", r.Sent, r.Acked, r.PublishErrors)
	}
	if r.Lost != 0 || r.Duplicated != 0 || r.Foreign != 0 || r.Unacked != 0 || r.Dropped != 0 {
		t.Fatalf("lost %d, duplicated %d, foreign %d, unacked %d, dropped %d %v",
			r.Lost, r.Duplicated, r.Foreign, r.Unacked, r.Dropped, r.DropReasons)
	}
	if r.Delivered != r.Expected || r.Expected == 0 {
		t.Fatalf("delivered %d of %d", r.Delivered, r.Expected)
	}
	if l := r.Latency; !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.Max && l.Max < 5000) {
		t.Fatalf("latency %+v", l)
	}
	ua := r.Procs["ua"]
	if ua.CPUS <= 0 || ua.RSSConn <= 0 || ua.CPUPerDeliveryUS <= 0 {
		t.Fatalf("process figures %+v", r.Procs)
	}
}

func TestFanoutAndDMAgainstUA(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioFanout)
	cfg.LogCount = s.logCount
	r := runOne(t, cfg)
	checkExact(t, r)
	// Every message is in the message log, once.
	if r.Log == nil || r.Log.Stored != r.Acked || r.Log.Missing != 0 || r.Log.LagS < 0 {
		t.Fatalf("message log %+v for %d messages", r.Log, r.Acked)
	}
	// Members of closed channels: every message reaches the ten members
	// of its channel, its sender among them.
	if r.Expected != 10*r.Acked {
		t.Fatalf("expected %d deliveries of %d messages, want 10 each", r.Expected, r.Acked)
	}

	cfg = s.config(bench.ScenarioDM)
	cfg.Conns = 20
	cfg.LogCount = s.logCount
	r = runOne(t, cfg)
	checkExact(t, r)
	// A direct message reaches both users: the partner and the sender's
	// own session.
	if r.Expected != 2*r.Acked {
		t.Fatalf("expected %d deliveries of %d direct messages, want 2 each", r.Expected, r.Acked)
	}
	if r.Log == nil || r.Log.Stored != r.Acked || r.Log.Missing != 0 {
		t.Fatalf("message log %+v for %d direct messages", r.Log, r.Acked)
	}
}

func TestSetupThroughTheAPI(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioFanout)
	cfg.Setup = &bench.APISetup{URL: s.apiURL, Key: s.apiKey, Concurrency: 4}
	r := runOne(t, cfg)
	// Channels, tokens and memberships made through the tenant API work
	// as well as those written to MySQL.
	checkExact(t, r)
	if r.Expected != 10*r.Acked {
		t.Fatalf("expected %d deliveries of %d messages, want 10 each", r.Expected, r.Acked)
	}
	// A wrong key is refused with the API's error code.
	cfg.Setup = &bench.APISetup{URL: s.apiURL, Key: "bench:wrong"}
	if _, err := bench.Run(context.Background(), cfg); !kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
		t.Fatalf("setup with a wrong key: %v, want unauthorized", err)
	}
}

func TestPublishedThroughTheAPIAgainstUA(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioFanout)
	cfg.PublishVia = bench.PublishAPI
	cfg.API = bench.APITarget{URL: s.apiURL, Key: s.apiKey, Concurrency: 8}
	cfg.LogCount = s.logCount
	r := runOne(t, cfg)
	// The API's system messages reach the clients with their data: the
	// receivers read the send time from them as from a say.
	checkExact(t, r)
	// No publisher is a client: each message is due to the ten members of
	// its channel, and is logged once.
	if r.Expected != 10*r.Acked || r.Publish != bench.PublishAPI {
		t.Fatalf("expected %d deliveries of %d messages (want 10 each), publish %q", r.Expected, r.Acked, r.Publish)
	}
	if r.Log == nil || r.Log.Stored != r.Acked || r.Log.Missing != 0 {
		t.Fatalf("message log %+v for %d messages", r.Log, r.Acked)
	}

	// The same posts gathered into batches (POST /messages/batch).
	cfg.API.Batch = 10
	r = runOne(t, cfg)
	checkExact(t, r)
	if r.Expected != 10*r.Acked || r.APIBatch != 10 || len(r.PublishErrors) != 0 {
		t.Fatalf("in batches: expected %d deliveries of %d messages (want 10 each), batch %d, errors %v", r.Expected, r.Acked, r.APIBatch, r.PublishErrors)
	}
	if r.Log == nil || r.Log.Stored != r.Acked || r.Log.Missing != 0 {
		t.Fatalf("message log %+v for %d messages posted in batches", r.Log, r.Acked)
	}
	cfg.API.Batch = 0

	// v2 clients in one open room, which they join with the join op.
	cfg = s.config(bench.ScenarioRoom)
	cfg.URLs = []string{s.url2}
	cfg.Conns, cfg.Rate, cfg.OpenChannels = 20, 10, true
	cfg.PublishVia = bench.PublishAPI
	cfg.API = bench.APITarget{URL: s.apiURL, Key: s.apiKey}
	r = runOne(t, cfg)
	checkExact(t, r)
	if r.Expected != 20*r.Acked {
		t.Fatalf("expected %d deliveries of %d messages, want 20 each", r.Expected, r.Acked)
	}

	// A wrong key: every post is refused, and counted as such.
	cfg.API.Key = "bench:wrong"
	r = runOne(t, cfg)
	if r.Sent == 0 || r.Acked != 0 || r.PublishErrors["HTTP 401 unauthorized"] != r.Sent || r.Delivered != 0 {
		t.Fatalf("with a wrong key: sent %d, acked %d, delivered %d, errors %v", r.Sent, r.Acked, r.Delivered, r.PublishErrors)
	}
}

func TestOpenRoomAgainstUA(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioRoom)
	cfg.Conns, cfg.Rate, cfg.OpenChannels = 20, 10, true
	r := runOne(t, cfg)
	// Clients joined the open channel with the join op: everyone gets
	// everything.
	checkExact(t, r)
	if r.Expected != 20*r.Acked {
		t.Fatalf("expected %d deliveries of %d messages, want 20 each", r.Expected, r.Acked)
	}
}

func TestMixedVersionsAgainstUAs(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioMixed)
	cfg.URLs = []string{s.url, s.url2}
	r := runOne(t, cfg)
	// v1 and v2 clients share channels: every message reaches all ten
	// members of its channel, whatever their version.
	checkExact(t, r)
	if r.Expected != 10*r.Acked {
		t.Fatalf("expected %d deliveries of %d messages, want 10 each", r.Expected, r.Acked)
	}
}

func TestStormWithResumeAgainstV2UA(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioStorm)
	cfg.URLs = []string{s.url2}
	cfg.Duration = 3 * time.Second
	r := runOne(t, cfg)
	// Publishers go on through the drop; v2 clients resume and get what
	// they missed replayed: nothing lost, nothing twice.
	// The publishers stay; the others drop and come back.
	if r.Reconnected != 40-r.Publishers || r.NotBack != 0 || r.StormS <= 0 {
		t.Fatalf("storm: %d back, %d not, in %v s: %v", r.Reconnected, r.NotBack, r.StormS, r.StormErrors)
	}
	if r.Acked == 0 || r.Lost != 0 || r.Duplicated != 0 || r.Delivered != r.Expected {
		t.Fatalf("acked %d, delivered %d of %d, lost %d, duplicated %d, unacked %d",
			r.Acked, r.Delivered, r.Expected, r.Lost, r.Duplicated, r.Unacked)
	}
	// The same against v1, which has no resume: what was said during the
	// drop is lost to those away (how much depends on the timing).
	cfg.URLs = []string{s.url}
	cfg.Drain = time.Second // lost messages never come
	r = runOne(t, cfg)
	if r.Reconnected != 40-r.Publishers || r.Duplicated != 0 || r.Delivered+r.Lost != r.Expected {
		t.Fatalf("v1 storm: %d back, delivered %d + lost %d of %d, duplicated %d",
			r.Reconnected, r.Delivered, r.Lost, r.Expected, r.Duplicated)
	}
	t.Logf("v1 clients lost %d of %d deliveries during the drop", r.Lost, r.Expected)
}

func TestIdleAndStormAgainstUA(t *testing.T) {
	s := newStack(t)
	cfg := s.config(bench.ScenarioIdle)
	cfg.Duration = 300 * time.Millisecond
	r := runOne(t, cfg)
	if r.Connected != 40 || r.ConnectRate <= 0 || r.Procs["ua"].RSSConn <= 0 {
		t.Fatalf("idle: %d connected at %v/s, %+v", r.Connected, r.ConnectRate, r.Procs)
	}
	cfg = s.config(bench.ScenarioStorm)
	cfg.Rate = 0 // a plain storm: nobody publishes
	cfg.Duration = 20 * time.Second
	r = runOne(t, cfg)
	if r.Reconnected != 40 || r.NotBack != 0 || r.StormS <= 0 || r.Dropped != 0 {
		t.Fatalf("storm: %d back, %d not, in %v s, dropped %d %v, errors %v",
			r.Reconnected, r.NotBack, r.StormS, r.Dropped, r.DropReasons, r.StormErrors)
	}
	// The UA let go of every session the storm dropped and those the run
	// closed at its end.
	deadline := time.Now().Add(10 * time.Second)
	for s.ua.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left on the UA", s.ua.Sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
