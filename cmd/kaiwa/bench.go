package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/bench"
	"github.com/kaiwa-chat/kaiwa/internal/bench/bare"
	"github.com/kaiwa-chat/kaiwa/tenants"
)

const benchUsage = `kaiwa bench: load generator for Kaiwa's WebSocket servers (loopback only)

usage: kaiwa bench SCENARIO [flags]
       kaiwa bench bare --listen 127.0.0.1:PORT
       kaiwa bench table --results FILE [--doc FILE] [--targets | --previous FILE]
       kaiwa bench table --doc FILE --section NAME --text FILE

scenarios:
  idle     N clients connect and are held: RSS per connection, idle CPU,
           connect rate and latency
  fanout   N clients in C channels, publishers at a total rate
  room     everyone in one channel (a world chat during an event)
  dm       clients in pairs, sending direct messages to each other
  storm    every client drops at once and reconnects: time until all are
           back, and the server work it caused; with --rate, publishers
           run through it and v2 clients resume what they missed
  mixed    fanout with clients of several protocol versions: --url lists
           endpoints of at least two (.../v1/ws,.../v2/ws)

other:
  bare     run the bare reference fan-out server in this process
  table    write the Markdown results tables of JSON result lines (to
           stdout, or into a document between <!-- bench:results -->
           markers), the targets table (--targets), a comparison of each
           row's CPU with an earlier run's results (--previous FILE), or
           replace another marked section with a file's text
  worker   (internal) a worker process, started by the coordinator

The run prepares its own tenant, channels, tokens and memberships: in MySQL
with --mysql-dsn (fastest), or through the tenant API with --api and
--api-key; with neither, it prepares nothing (the bare server needs nothing).

Publishers are clients sending the say op (--publish-via ws, the default).
In fanout and room, --publish-via api makes them a game server instead:
every message is a system message posted to the tenant API at --api
(POST /channels/{ch}/messages, at most --api-concurrency requests in
flight; with --api-batch N, gathered into POST /messages/batch calls of
up to N), and every client of the channel is due it. The key is --api-key;
with --mysql-dsn and no --api-key, the run adds a key to its tenant in
MySQL and revokes it at the end:

  kaiwa bench fanout --mysql-dsn DSN --url ws://127.0.0.1:8090/v1/ws \
      --publish-via api --api http://127.0.0.1:8081/v1/api --rate 400

A progress line goes to stderr every second; a summary and then one JSON
line go to stdout (one of each per window when --rate or --deliveries lists
several rates).

"kaiwa bench SCENARIO -h" lists the flags.
`

// runBench is "kaiwa bench". The worker subcommand reads its plan from
// the process's standard input.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return usageError{"bench: no scenario given"}
	}
	switch sc := args[0]; sc {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	case "worker":
		return bench.ServeWorker(ctx, os.Stdin, stdout)
	case "bare":
		return runBenchBare(ctx, args[1:], getenv, stdout, stderr)
	case "table":
		return runBenchTable(args[1:], getenv, stdout, stderr)
	case bench.ScenarioIdle, bench.ScenarioFanout, bench.ScenarioRoom, bench.ScenarioDM, bench.ScenarioStorm, bench.ScenarioMixed:
		return runBenchScenario(ctx, sc, args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprint(stderr, benchUsage)
		return usageError{fmt.Sprintf("bench: unknown scenario %q", sc)}
	}
}

// pidFlags collects --pid NAME=PID values.
type pidFlags []bench.NamedPID

func (p *pidFlags) String() string {
	parts := make([]string, len(*p))
	for i, np := range *p {
		parts[i] = np.Name + "=" + strconv.Itoa(np.PID)
	}
	return strings.Join(parts, ",")
}

func (p *pidFlags) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		name, pid, ok := strings.Cut(strings.TrimSpace(item), "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || err != nil || n <= 0 {
			return fmt.Errorf("want NAME=PID, got %q", item)
		}
		*p = append(*p, bench.NamedPID{Name: name, PID: n})
	}
	return nil
}

func runBenchScenario(ctx context.Context, scenario string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("bench "+scenario, getenv, stderr)
	urls := f.str("url", "KAIWA_BENCH_URL", "ws://127.0.0.1:8090/v1/ws", "WebSocket URL of a UA, the bare server or nginx (loopback only); several, comma separated, take the clients in turn")
	insecure := f.boolean("insecure", "KAIWA_BENCH_INSECURE", "skip TLS certificate checks (nginx's self-signed development certificate)")
	label := f.str("label", "KAIWA_BENCH_LABEL", "", "name of this run's row in the results table (default: the server's --pid name)")
	server := f.str("server", "KAIWA_BENCH_SERVER", "", "the --pid name of the server under test (default: the first --pid)")
	conns := f.integer("conns", "KAIWA_BENCH_CONNS", 1000, "clients")
	channels := f.integer("channels", "KAIWA_BENCH_CHANNELS", 0, "channels (fanout: default clients/100; room: 1; storm: default clients/100)")
	open := f.boolean("open", "KAIWA_BENCH_OPEN", "open channels that clients join with the join op, no memberships (a world chat); default: closed channels with the clients as members")
	rate := f.str("rate", "KAIWA_BENCH_RATE", "", "messages per second of all publishers together; several, comma separated, make a sweep: one window per rate on the same clients")
	deliveries := f.str("deliveries", "KAIWA_BENCH_DELIVERIES", "", "target deliveries per second instead of --rate (rate = deliveries / channel size; dm: / 2); a comma-separated list sweeps")
	sweepP99 := f.duration("sweep-max-p99", "KAIWA_BENCH_SWEEP_MAX_P99", 0, "stop a sweep after the first window whose p99 is above this or that lost messages")
	payload := f.integer("payload", "KAIWA_BENCH_PAYLOAD", 100, "bytes of each message's data object")
	pubs := f.integer("publishers", "KAIWA_BENCH_PUBLISHERS", 0, "publishers per channel (default: enough to keep each under --max-publisher-rate)")
	maxPubRate := floatFlag(f, "max-publisher-rate", "KAIWA_BENCH_MAX_PUBLISHER_RATE", 8, "most messages per second one client sends (the default tenant limit is 10 ops/s)")
	duration := f.duration("duration", "KAIWA_BENCH_DURATION", 10*time.Second, "measurement window (storm: longest wait for everyone to be back)")
	deadline := f.duration("deadline", "KAIWA_BENCH_DEADLINE", 0, "hard limit of the whole run, setup included (default duration + 5m)")
	settle := f.duration("settle", "KAIWA_BENCH_SETTLE", time.Second, "pause between the last connection and the window")
	drain := f.duration("drain", "KAIWA_BENCH_DRAIN", 10*time.Second, "longest wait for the last deliveries")
	conc := f.integer("connect-concurrency", "KAIWA_BENCH_CONNECT_CONCURRENCY", 64, "connection attempts in flight")
	connRate := floatFlag(f, "connect-rate", "KAIWA_BENCH_CONNECT_RATE", 0, "new connections per second (0: as fast as the concurrency allows)")
	sources := f.integer("sources", "KAIWA_BENCH_SOURCES", 0, "loopback source addresses, 127.0.0.2 on (default one per 10,000 clients)")
	perProc := f.integer("per-process", "KAIWA_BENCH_PER_PROCESS", 18000, "most clients one process holds; more run in worker processes")
	procs := f.integer("processes", "KAIWA_BENCH_PROCESSES", 0, "worker processes (default: as --per-process requires)")
	eventBuf := f.integer("event-buffer", "KAIWA_BENCH_EVENT_BUFFER", 0, "each client's events buffer (default 512, storm 128, idle 16)")
	cpuProfile := f.str("cpuprofile", "KAIWA_BENCH_CPUPROFILE", "", "write the load tool's CPU profile to this file (this process: the clients too when no worker processes run)")
	var pids pidFlags
	f.Var(&pids, "pid", "server process to measure, NAME=PID (repeatable; equal names add up, e.g. two UAs)")
	dsn := f.str("mysql-dsn", "KAIWA_BENCH_MYSQL_DSN", "", "set up tokens, channels and members in this MySQL database (loopback only)")
	tenant := f.str("tenant", "KAIWA_BENCH_TENANT", "bench", "tenant to run as (created in MySQL when missing)")
	api := f.str("api", "KAIWA_BENCH_API", "", "set up through this tenant API base URL instead, e.g. http://127.0.0.1:8081/v1/api (loopback only); with --publish-via api, the API publishers post to (then --mysql-dsn may set up)")
	apiKey := f.str("api-key", "KAIWA_BENCH_API_KEY", "", "API key for --api (with --publish-via api and --mysql-dsn: default a key the run adds to its tenant and revokes at the end)")
	publishVia := f.str("publish-via", "KAIWA_BENCH_PUBLISH_VIA", bench.PublishWS, `how publishers send: "ws", the say op on their own connections, or "api" (fanout, room), system messages posted to the tenant API at --api as a game server does`)
	apiConc := f.integer("api-concurrency", "KAIWA_BENCH_API_CONCURRENCY", bench.DefaultAPIConcurrency, "with --publish-via api: most requests in flight, over keep-alive connections")
	apiBatch := f.integer("api-batch", "KAIWA_BENCH_API_BATCH", 0, fmt.Sprintf("with --publish-via api: post in batches of up to this many messages (POST /messages/batch, at most %d), each gathered for up to 5 ms; 0: one post per message", kaiwa.MaxBatch))
	setupConc := f.integer("setup-concurrency", "KAIWA_BENCH_SETUP_CONCURRENCY", 16, "setup writes or requests in flight")
	signed := f.boolean("signed", "KAIWA_BENCH_SIGNED", "with --mysql-dsn: the clients' tokens are signed tokens the benchmark mints with a key it registers, instead of registered ones")
	checkLog := f.boolean("check-log", "KAIWA_BENCH_CHECK_LOG", "after the window, wait until the message log in --mysql-dsn holds every acknowledged message: stored, missing, and the log writer's lag")
	quiet := f.boolean("quiet", "KAIWA_BENCH_QUIET", "no progress lines")
	if err := f.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usageError{fmt.Sprintf("bench %s: unexpected argument %q", scenario, f.Arg(0))}
	}
	viaAPI := false
	switch *publishVia {
	case bench.PublishWS:
	case bench.PublishAPI:
		if scenario != bench.ScenarioFanout && scenario != bench.ScenarioRoom {
			return usageError{fmt.Sprintf("bench %s: --publish-via api is for fanout and room", scenario)}
		}
		if *api == "" {
			return usageError{"bench: --publish-via api needs --api, the tenant API to post to"}
		}
		viaAPI = true
	default:
		return usageError{fmt.Sprintf("bench: --publish-via %q: want ws or api", *publishVia)}
	}
	cfg := bench.Config{
		Scenario: scenario, Insecure: *insecure, Label: *label, Server: *server,
		Conns: *conns, Channels: *channels, OpenChannels: *open, Payload: *payload, SweepMaxP99: *sweepP99,
		PublishersPerChannel: *pubs, MaxPublisherRate: *maxPubRate,
		Duration: *duration, Deadline: *deadline, Settle: *settle, Drain: *drain,
		ConnectConcurrency: *conc, ConnectRate: *connRate, Sources: *sources,
		PerProcess: *perProc, Processes: *procs, EventBuffer: *eventBuf, PIDs: pids,
	}
	for _, u := range strings.Split(*urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.URLs = append(cfg.URLs, u)
		}
	}
	if (scenario == bench.ScenarioFanout || scenario == bench.ScenarioMixed) && cfg.Channels == 0 {
		cfg.Channels = max(cfg.Conns/100, 1)
	}
	rates, err := floatList(*rate)
	if err != nil {
		return usageError{fmt.Sprintf("bench %s: --rate: %v", scenario, err)}
	}
	dels, err := floatList(*deliveries)
	if err != nil {
		return usageError{fmt.Sprintf("bench %s: --deliveries: %v", scenario, err)}
	}
	for _, d := range dels {
		switch scenario {
		case bench.ScenarioDM:
			rates = append(rates, d/2)
		case bench.ScenarioFanout, bench.ScenarioRoom, bench.ScenarioMixed, bench.ScenarioStorm:
			ch := max(cfg.Channels, 1)
			if scenario == bench.ScenarioRoom {
				ch = 1
			}
			rates = append(rates, d/(float64(cfg.Conns)/float64(ch)))
		}
	}
	cfg.Rates = rates
	if cfg.Label == "" && cfg.Server == "" && len(pids) > 0 {
		cfg.Label = pids[0].Name
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find own executable: %w", err)
	}
	cfg.StartWorker = bench.ExecWorker(stderr, exe, "bench", "worker")

	key := *apiKey
	switch {
	case *dsn != "" && *api != "" && !viaAPI:
		return usageError{"bench: give --mysql-dsn or --api, not both (both only with --publish-via api: set up in MySQL, post through the API)"}
	case *dsn != "":
		if err := checkLoopbackDSN(*dsn); err != nil {
			return err
		}
		store, err := tenants.Open(ctx, *dsn)
		if err != nil {
			return err
		}
		defer store.Close()
		t := kaiwa.TenantID(*tenant)
		if _, err := store.CreateTenant(ctx, t, "Benchmarks"); err != nil && !kaiwa.IsCode(err, kaiwa.CodeConflict) {
			return fmt.Errorf("bench: create tenant %s: %w", t, err)
		}
		if viaAPI && key == "" {
			k, revoke, err := benchAPIKey(ctx, store, t)
			if err != nil {
				return err
			}
			defer func() {
				if err := revoke(); err != nil {
					fmt.Fprintf(stderr, "bench: %v\n", err)
				}
			}()
			key = k
		}
		st := &bench.StoreSetup{Tenant: t, Tokens: store, Channels: store, Concurrency: *setupConc}
		cfg.Setup = st
		if *signed {
			cfg.Setup = &bench.SignedSetup{StoreSetup: st, Keys: store}
		}
		if *checkLog {
			db, err := sql.Open("mysql", *dsn)
			if err != nil {
				return fmt.Errorf("bench: open mysql: %w", err)
			}
			defer db.Close()
			cfg.LogCount = bench.SQLLogCount(db, t)
		}
	case *checkLog:
		return usageError{"bench: --check-log needs --mysql-dsn"}
	case *signed:
		return usageError{"bench: --signed needs --mysql-dsn"}
	case *api != "":
		if *apiKey == "" {
			return usageError{"bench: --api needs --api-key"}
		}
		if err := bench.CheckLoopback(ctx, *api); err != nil {
			return err
		}
		cfg.Setup = &bench.APISetup{URL: *api, Key: *apiKey, Concurrency: *setupConc}
	}
	if viaAPI {
		if key == "" {
			return usageError{"bench: --publish-via api needs --api-key, or --mysql-dsn to make one"}
		}
		if err := bench.CheckLoopback(ctx, *api); err != nil {
			return err
		}
		cfg.PublishVia = bench.PublishAPI
		if *apiBatch < 0 || *apiBatch > kaiwa.MaxBatch {
			return usageError{fmt.Sprintf("bench: --api-batch must be 0 to %d", kaiwa.MaxBatch)}
		}
		cfg.API = bench.APITarget{URL: *api, Key: key, Concurrency: *apiConc, Batch: *apiBatch}
	}

	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return err
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	results, err := bench.Run(ctx, cfg)
	for _, res := range results {
		res.WriteSummary(stdout)
	}
	for _, res := range results {
		line, jerr := json.Marshal(res)
		if jerr != nil {
			return errors.Join(err, jerr)
		}
		fmt.Fprintf(stdout, "%s\n", line)
	}
	if err != nil {
		return fmt.Errorf("bench %s: %w", scenario, err)
	}
	return nil
}

// benchAPIKey adds an API key to tenant t for the run's publishers and
// returns it with a function that revokes it.
func benchAPIKey(ctx context.Context, store *tenants.Store, t kaiwa.TenantID) (key string, revoke func() error, err error) {
	key, err = store.RotateKey(ctx, t)
	if err != nil {
		return "", nil, fmt.Errorf("bench: add an API key to %s: %w", t, err)
	}
	_, id, err := store.AuthenticateKeyID(ctx, key)
	if err != nil {
		return "", nil, fmt.Errorf("bench: the API key added to %s: %w", t, err)
	}
	return key, func() error {
		// Revoked even when the run was interrupted.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := store.RevokeKey(rctx, t, id); err != nil {
			return fmt.Errorf("revoke the run's API key %d of %s: %w", id, t, err)
		}
		return nil
	}, nil
}

// floatList parses a comma-separated list of numbers ("" is none).
func floatList(s string) ([]float64, error) {
	var out []float64
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		v, err := strconv.ParseFloat(part, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", part)
		}
		out = append(out, v)
	}
	return out, nil
}

// checkLoopbackDSN refuses a MySQL DSN whose server is not on this
// machine: the load tool writes thousands of rows.
func checkLoopbackDSN(dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("bench: parse mysql dsn: %w", err)
	}
	if cfg.Net == "unix" {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host = cfg.Addr
	}
	if host == "localhost" {
		return nil
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
		return fmt.Errorf("bench: the MySQL server %s is not a loopback address", cfg.Addr)
	}
	return nil
}

func runBenchBare(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("bench bare", getenv, stderr)
	addr := f.str("listen", "KAIWA_BENCH_BARE_LISTEN", "127.0.0.1:8099", `loopback "host:port", or "unix:/path.sock" (behind nginx)`)
	queue := f.integer("send-queue", "KAIWA_BENCH_BARE_QUEUE", bare.DefaultQueue, "each session's send queue, in frames")
	if err := f.Parse(args); err != nil {
		return err
	}
	if !strings.HasPrefix(*addr, "unix:") {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil {
			return usageError{fmt.Sprintf("bench bare: --listen: %v", err)}
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
			return usageError{fmt.Sprintf("bench bare: --listen %s is not a loopback address", *addr)}
		}
	}
	ln, err := listen(*addr)
	if err != nil {
		return fmt.Errorf("bench bare: %w", err)
	}
	if _, err := bench.RaiseFileLimit(); err != nil {
		ln.Close()
		return err
	}
	s := bare.New()
	s.Queue = *queue
	fmt.Fprintf(stdout, "bare reference server listening on %s (path /v1/ws)\n", *addr)
	return s.Serve(ctx, ln)
}

func runBenchTable(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("bench table", getenv, stderr)
	results := f.str("results", "KAIWA_BENCH_RESULTS", "", "file of JSON result lines (other lines are skipped)")
	doc := f.str("doc", "KAIWA_BENCH_DOC", "", "Markdown document to update between <!-- bench:results --> markers (default: print the tables)")
	section := f.str("section", "KAIWA_BENCH_SECTION", "results", "name of the marked section to replace")
	text := f.str("text", "KAIWA_BENCH_TEXT", "", "replace the section with this file's text instead of results tables (needs --doc)")
	targets := f.boolean("targets", "KAIWA_BENCH_TARGETS", "write the table of the issue's targets, measured and met, instead of the results tables")
	previous := f.str("previous", "KAIWA_BENCH_PREVIOUS", "", "write a comparison of each row's CPU with this earlier run's results file instead of the results tables (a missing file: no previous run)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if *text != "" {
		if *doc == "" {
			return usageError{"bench table: --text needs --doc"}
		}
		content, err := os.ReadFile(*text)
		if err != nil {
			return err
		}
		return replaceDocSection(*doc, *section, string(content))
	}
	if *results == "" {
		return usageError{"bench table: --results is required"}
	}
	rs, err := readResults(*results)
	if err != nil {
		return err
	}
	var b strings.Builder
	switch {
	case *previous != "":
		var prev []bench.Result
		if _, err := os.Stat(*previous); err == nil {
			if prev, err = readResults(*previous); err != nil {
				return err
			}
		}
		bench.WriteComparison(&b, prev, rs)
	case *targets:
		bench.WriteTargets(&b, rs)
	default:
		bench.WriteTables(&b, rs)
	}
	if *doc == "" {
		_, err := io.WriteString(stdout, b.String())
		return err
	}
	return replaceDocSection(*doc, *section, b.String())
}

// readResults reads a file of result lines ([bench.ReadResults]).
func readResults(name string) ([]bench.Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs, err := bench.ReadResults(f)
	if err != nil {
		return nil, fmt.Errorf("bench table: read %s: %w", name, err)
	}
	return rs, nil
}

// replaceDocSection replaces a marked section of a Markdown file.
func replaceDocSection(doc, section, content string) error {
	old, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	out, err := bench.ReplaceSection(old, section, content)
	if err != nil {
		return fmt.Errorf("bench table: %s: %w", doc, err)
	}
	return os.WriteFile(doc, out, 0o644)
}

// floatFlag defines a float flag with an environment fallback.
func floatFlag(f envFlags, name, env string, fallback float64, help string) *float64 {
	v := fallback
	if s := f.getenv(env); s != "" {
		p, err := strconv.ParseFloat(s, 64)
		if err != nil {
			f.badEnv(env, s, "a number")
		} else {
			v = p
		}
	}
	return f.Float64(name, v, fmt.Sprintf("%s (env %s)", help, env))
}
