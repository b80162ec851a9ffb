package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// NamedPID names a server process whose CPU and memory a run reports.
// Several PIDs may share a name (two UA processes, nginx's workers); their
// figures are added up.
type NamedPID struct {
	Name string
	PID  int
}

// Config describes one run. Zero fields take the defaults noted.
type Config struct {
	// Scenario is one of [Scenarios].
	Scenario string
	// URLs are the WebSocket endpoints: ws://127.0.0.1:PORT/v1/ws for a
	// UA or the bare server, wss://127.0.0.1/v1/ws through nginx. Client i
	// connects to URLs[i mod len(URLs)] (two UA processes without nginx).
	// Only loopback addresses are accepted.
	URLs []string
	// Insecure skips TLS certificate checks (a self-signed local cert).
	Insecure bool
	// Label tags the result (for instance the server under test).
	Label string
	// Server names the [NamedPID] group that is the server under test,
	// whose figures the results table shows (default: the first PID's
	// name).
	Server string

	// Conns is the number of clients.
	Conns int
	// Channels is the number of channels (fanout; room has one; idle and
	// storm default to none and ceil(Conns/100)).
	Channels int
	// OpenChannels makes the channels open: no memberships are set up
	// and clients join them with the join op (a world chat). By default
	// they are closed, and the clients members, joined when they connect.
	OpenChannels bool
	// Rate is the messages per second of all publishers together.
	Rate float64
	// Rates, when set, replaces Rate with a sweep: one window per rate, in
	// order, on the same clients.
	Rates []float64
	// SweepMaxP99 stops a sweep after the first window whose p99 latency
	// is above it or that lost messages (0: run every window).
	SweepMaxP99 time.Duration
	// Payload is the size of each message's data object (default 100).
	Payload int
	// PublishersPerChannel (fanout, room) defaults to as many as keep
	// each below MaxPublisherRate.
	PublishersPerChannel int
	// MaxPublisherRate is the most messages per second one client sends
	// (default 8: under the default limit of 10 ops/s per connection).
	// API publishers are planned the same way.
	MaxPublisherRate float64
	// PublishVia is how publishers send: [PublishWS] (the default), or
	// [PublishAPI] (fanout and room), which posts to the tenant API that
	// the API field names.
	PublishVia string
	// API is the tenant API [PublishAPI] posts through.
	API APITarget

	// Duration is the measurement window (default 10s); for storm, the
	// longest wait for everyone to be back.
	Duration time.Duration
	// Deadline bounds the whole run, setup included (default Duration +
	// 5 minutes).
	Deadline time.Duration
	// Settle is the pause between the last connection and the window
	// (default 1s), Drain the longest wait for late deliveries (default
	// 10s), Quiet the wait for late duplicates once every message due has
	// come (default 200ms).
	Settle, Drain, Quiet time.Duration

	// ConnectConcurrency bounds connection attempts in flight (default
	// 64); ConnectRate their start rate per second (0: unbounded).
	ConnectConcurrency int
	ConnectRate        float64
	// ConnectTimeout bounds one connection attempt (default 15s).
	ConnectTimeout time.Duration
	// Sources is the number of loopback source addresses (default one per
	// 10,000 clients, when the target is IPv4).
	Sources int
	// PerProcess is the most clients one process holds (default 18,000);
	// more are spread over worker processes.
	PerProcess int
	// Processes forces this many worker processes (0: as PerProcess
	// requires, none when one is enough).
	Processes int
	// EventBuffer is each client's events channel capacity (default 512;
	// storm 128, idle 16), for everything but messages, which each client
	// counts on its reader goroutine. A client whose buffer fills closes
	// itself as a slow reader, and the server's bursts (presence when a
	// room fills) can be long, so it is generous; it costs 152 bytes per
	// slot, made and zeroed at every dial: in a storm of 10,000
	// reconnects, 512 slots were about a tenth of the load tool's CPU.
	EventBuffer int

	// PIDs are the server processes to measure.
	PIDs []NamedPID
	// Setup provisions tokens, channels and members; nil provisions
	// nothing (the bare server needs no token, and clients join by op).
	Setup Provisioner
	// TokenTTL is the life of the tokens made (default 1 hour).
	TokenTTL time.Duration
	// StartWorker starts a worker process: a command whose stdin takes
	// the plan and whose stdout gives results (see [ServeWorker]). It is
	// needed when the run uses worker processes.
	StartWorker func(ctx context.Context) (*WorkerProcess, error)
	// Progress receives a progress line every second (nil: none).
	Progress io.Writer

	// LogCount, when set, counts the messages the message log (MySQL)
	// holds in channels whose names start with prefix. After the window
	// the run polls it until the log holds every acknowledged message or
	// LogTimeout (default 30s) passes, and reports the log writer's lag.
	LogCount   func(ctx context.Context, prefix string) (uint64, error)
	LogTimeout time.Duration
}

func (c *Config) setDefaults() {
	if len(c.Rates) == 0 && c.Rate > 0 {
		c.Rates = []float64{c.Rate}
	}
	if c.Server == "" && len(c.PIDs) > 0 {
		c.Server = c.PIDs[0].Name
	}
	if c.Payload <= 0 {
		c.Payload = 100
	}
	if c.MaxPublisherRate <= 0 {
		c.MaxPublisherRate = 8
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Deadline <= 0 {
		c.Deadline = c.Duration + 5*time.Minute
	}
	if c.Settle <= 0 {
		c.Settle = time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 200 * time.Millisecond
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 64
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 15 * time.Second
	}
	if c.PerProcess <= 0 {
		c.PerProcess = 18000
	}
	if c.EventBuffer <= 0 {
		switch c.Scenario {
		case ScenarioIdle:
			c.EventBuffer = 16
		case ScenarioStorm:
			c.EventBuffer = 128
		default:
			c.EventBuffer = 512
		}
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.LogTimeout <= 0 {
		c.LogTimeout = 30 * time.Second
	}
	if c.PublishVia == "" {
		c.PublishVia = PublishWS
	}
	if c.API.Concurrency <= 0 {
		c.API.Concurrency = DefaultAPIConcurrency
	}
	switch c.Scenario {
	case ScenarioRoom:
		c.Channels = 1
	case ScenarioStorm:
		if c.Channels <= 0 {
			c.Channels = (c.Conns + 99) / 100
		}
	}
}

func (c *Config) check() error {
	switch c.Scenario {
	case ScenarioIdle, ScenarioStorm:
	case ScenarioFanout, ScenarioRoom, ScenarioMixed:
		if c.Channels < 1 {
			return errors.New("fanout needs at least one channel")
		}
		if c.Scenario == ScenarioMixed && len(urlVersions(c.URLs)) < 2 {
			return errors.New("mixed needs URLs of at least two protocol versions (.../v1/ws,.../v2/ws)")
		}
		if !positive(c.Rates) {
			return fmt.Errorf("%s needs a message rate", c.Scenario)
		}
	case ScenarioDM:
		if c.Conns%2 != 0 {
			return errors.New("dm pairs clients up: give an even number")
		}
		if !positive(c.Rates) {
			return errors.New("dm needs a message rate")
		}
	default:
		return fmt.Errorf("unknown scenario %q", c.Scenario)
	}
	if c.Conns < 1 {
		return errors.New("at least one client is needed")
	}
	if c.Channels > c.Conns {
		return fmt.Errorf("%d channels for %d clients: some would be empty", c.Channels, c.Conns)
	}
	if c.Payload > 4096 {
		return fmt.Errorf("payload %d bytes: the protocol allows 4096", c.Payload)
	}
	switch c.PublishVia {
	case PublishWS:
	case PublishAPI:
		if c.Scenario != ScenarioFanout && c.Scenario != ScenarioRoom {
			return fmt.Errorf("%s cannot publish through the API: only fanout and room can", c.Scenario)
		}
		if c.API.URL == "" || c.API.Key == "" {
			return errors.New("publishing through the API needs its URL and an API key")
		}
	default:
		return fmt.Errorf("publishers send via %q or %q, not %q", PublishWS, PublishAPI, c.PublishVia)
	}
	return nil
}

// urlVersions returns the distinct protocol versions of WebSocket URLs
// (the path segment before "ws").
func urlVersions(urls []string) []string {
	var out []string
	for _, u := range urls {
		parts := strings.Split(strings.TrimSuffix(u, "/"), "/")
		if len(parts) >= 2 && parts[len(parts)-1] == "ws" && !slices.Contains(out, parts[len(parts)-2]) {
			out = append(out, parts[len(parts)-2])
		}
	}
	return out
}

// positive reports whether rates is not empty and every rate above zero.
func positive(rates []float64) bool {
	for _, r := range rates {
		if r <= 0 {
			return false
		}
	}
	return len(rates) > 0
}

// layout is the whole run's clients, groups and publishers.
type layout struct {
	users    []string
	group    []int    // per client, -1 for none
	groups   []string // channel names (fanout, room, idle, storm)
	nGroups  int
	pubConn  []int // per publisher, its client
	pubTo    []string
	pubGroup []int
	pubRates []float64 // per window
	seqs     int
	// prefix starts the name of every channel of the run.
	prefix string
}

// runID returns a short id that keeps one run's users and channels apart
// from every other run's.
func runID() string {
	return "b" + strconv.FormatInt(time.Now().UnixMilli()%(36*36*36*36*36*36), 36)
}

func plan(c *Config, id string) layout {
	var l layout
	l.users = make([]string, c.Conns)
	l.group = make([]int, c.Conns)
	for i := range l.users {
		l.users[i] = id + "-" + strconv.Itoa(i)
		l.group[i] = -1
	}
	switch c.Scenario {
	case ScenarioDM:
		// dm:A:B with A the smaller id: a pair's first user's, which
		// starts with the run id.
		l.prefix = kaiwa.DMPrefix + id + "-"
		l.nGroups = c.Conns / 2
		for i := range l.users {
			l.group[i] = i / 2
			l.pubConn = append(l.pubConn, i)
			l.pubTo = append(l.pubTo, l.users[i^1])
			l.pubGroup = append(l.pubGroup, i/2)
		}
		for _, rate := range c.Rates {
			l.pubRates = append(l.pubRates, rate/float64(c.Conns))
		}
	default:
		l.nGroups = c.Channels
		l.prefix = "bench." + id + "."
		for g := range c.Channels {
			l.groups = append(l.groups, l.prefix+strconv.Itoa(g))
		}
		for i := range l.users {
			if c.Channels > 0 {
				l.group[i] = i % c.Channels
			}
		}
		if len(c.Rates) > 0 && c.Channels > 0 && c.Scenario != ScenarioIdle {
			perCh := slices.Max(c.Rates) / float64(c.Channels)
			k := c.PublishersPerChannel
			if k <= 0 {
				k = int(math.Ceil(perCh / c.MaxPublisherRate))
			}
			size := c.Conns / c.Channels // the smallest group's size
			k = min(max(k, 1), max(size, 1))
			for g := range c.Channels {
				for j := range k {
					l.pubConn = append(l.pubConn, g+j*c.Channels)
					l.pubTo = append(l.pubTo, "")
					l.pubGroup = append(l.pubGroup, g)
				}
			}
			for _, rate := range c.Rates {
				l.pubRates = append(l.pubRates, rate/float64(c.Channels)/float64(k))
			}
		}
	}
	if len(l.pubRates) > 0 {
		l.seqs = min(int(math.Ceil(slices.Max(l.pubRates)*c.Duration.Seconds()))+1, 1<<20)
	}
	return l
}

// windows returns the number of measurement windows.
func (l layout) windows() int { return max(len(l.pubRates), 1) }

// handle is a worker the coordinator drives: in this process or another.
type handle interface {
	// connected waits for the connect phase's end.
	connected(ctx context.Context) (ConnectStats, error)
	// start gives the measurement window.
	start(win Window) error
	// published waits until the worker's publishers have stopped and
	// returns how many messages each publisher of the run got
	// acknowledged (zero for other workers' publishers).
	published(ctx context.Context) ([]uint64, error)
	// finish lets the worker drain, once every worker has published,
	// with every publisher's acknowledged messages.
	finish(acked []uint64) error
	// result waits for the window's result.
	result(ctx context.Context) (WorkerResult, error)
	progress() Progress
	// close ends the worker's clients (and process).
	close()
}

// localHandle runs a worker in this process.
type localHandle struct {
	w        *worker
	ctx      context.Context
	conn     chan ConnectStats
	pub      chan []uint64
	finished chan []uint64
	res      chan WorkerResult
}

func newLocal(ctx context.Context, p Plan) (*localHandle, error) {
	w, err := newWorker(p)
	if err != nil {
		return nil, err
	}
	h := &localHandle{
		w: w, ctx: ctx, conn: make(chan ConnectStats, 1), pub: make(chan []uint64, 1),
		finished: make(chan []uint64, 1), res: make(chan WorkerResult, 1),
	}
	go func() { h.conn <- w.connect(ctx) }()
	return h, nil
}

func (h *localHandle) connected(ctx context.Context) (ConnectStats, error) {
	select {
	case st := <-h.conn:
		return st, nil
	case <-ctx.Done():
		return ConnectStats{}, ctx.Err()
	}
}

func (h *localHandle) start(win Window) error {
	go func() {
		r := h.w.run(h.ctx, win)
		h.pub <- h.w.acked()
		var acked []uint64
		select {
		case acked = <-h.finished:
		case <-h.ctx.Done():
		}
		h.res <- h.w.finish(h.ctx, r, acked)
	}()
	return nil
}

func (h *localHandle) published(ctx context.Context) ([]uint64, error) {
	select {
	case a := <-h.pub:
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *localHandle) finish(acked []uint64) error {
	h.finished <- acked
	return nil
}

func (h *localHandle) result(ctx context.Context) (WorkerResult, error) {
	select {
	case r := <-h.res:
		return r, nil
	case <-ctx.Done():
		return WorkerResult{}, ctx.Err()
	}
}

func (h *localHandle) progress() Progress { return h.w.progress() }
func (h *localHandle) close()             { h.w.close() }

// procSet samples the named server processes.
type procSet struct {
	pids []NamedPID
}

func (ps procSet) sample() (map[string]ProcSample, error) {
	out := make(map[string]ProcSample)
	for _, np := range ps.pids {
		s, err := SampleProc(np.PID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", np.Name, err)
		}
		a := out[np.Name]
		a.CPU += s.CPU
		a.RSS += s.RSS
		out[np.Name] = a
	}
	return out, nil
}

// Run performs one benchmark run and returns what each of its windows
// measured: one window, or one per rate of [Config.Rates]. On an error it
// returns the windows measured so far, and a result with the connect phase
// when no window ran.
func Run(ctx context.Context, cfg Config) ([]*Result, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no target URL")
	}
	for _, u := range cfg.URLs {
		if err := CheckLoopback(ctx, u); err != nil {
			return nil, err
		}
	}
	if cfg.PublishVia == PublishAPI {
		if err := CheckLoopback(ctx, cfg.API.URL); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	deadline, _ := ctx.Deadline()
	limit, err := RaiseFileLimit()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	id := runID()
	l := plan(&cfg, id)
	if cfg.Progress != nil {
		cfg.Progress = &lockedWriter{w: cfg.Progress}
	}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "bench: "+format+"\n", args...)
		}
	}

	tokens := make([]string, cfg.Conns)
	if cfg.Setup != nil {
		t0 := time.Now()
		kind := kaiwa.ChannelClosed
		if cfg.OpenChannels {
			kind = kaiwa.ChannelOpen
		}
		if len(l.groups) > 0 {
			if err := cfg.Setup.CreateChannels(ctx, l.groups, kind); err != nil {
				return nil, fmt.Errorf("setup: %w", err)
			}
		}
		tokens, err = cfg.Setup.IssueTokens(ctx, l.users, cfg.TokenTTL)
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		members := make([][]string, len(l.groups))
		for i, g := range l.group {
			if g >= 0 && len(l.groups) > 0 && !cfg.OpenChannels {
				members[g] = append(members[g], l.users[i])
			}
		}
		for g, ms := range members {
			if len(ms) == 0 {
				continue
			}
			if err := cfg.Setup.AddMembers(ctx, l.groups[g], ms); err != nil {
				return nil, fmt.Errorf("setup: %w", err)
			}
		}
		logf("setup: %d tokens, %d channels and their members in %.1f s", len(tokens), len(l.groups), time.Since(t0).Seconds())
	}

	nproc := cfg.Processes
	if nproc <= 0 {
		nproc = (cfg.Conns + cfg.PerProcess - 1) / cfg.PerProcess
		if nproc == 1 {
			nproc = 0 // in this process
		}
	}
	sources := cfg.Sources
	if sources <= 0 {
		sources = (cfg.Conns + 9999) / 10000
	}
	var srcs []string
	if ipv4Targets(cfg.URLs) {
		for _, a := range SourceAddrs(sources) {
			srcs = append(srcs, a.String())
		}
	}
	plans := splitPlan(&cfg, l, tokens, max(nproc, 1), srcs, deadline)

	ps := procSet{pids: cfg.PIDs}
	before, err := ps.sample()
	if err != nil {
		return nil, err
	}
	var handles []handle
	defer func() {
		var wg sync.WaitGroup
		for _, h := range handles {
			wg.Add(1)
			go func() { defer wg.Done(); h.close() }()
		}
		wg.Wait()
	}()
	for _, p := range plans {
		var h handle
		if nproc == 0 {
			h, err = newLocal(ctx, p)
		} else {
			if cfg.StartWorker == nil {
				return nil, errors.New("this run needs worker processes and no way to start them was given")
			}
			h, err = startRemote(ctx, cfg.StartWorker, p)
		}
		if err != nil {
			return nil, err
		}
		handles = append(handles, h)
	}
	stopProgress := progressLoop(cfg.Progress, cfg.Scenario, cfg.Conns, handles)
	defer stopProgress()

	res := &Result{
		Scenario: cfg.Scenario, Label: cfg.Label, Server: cfg.Server, Target: strings.Join(cfg.URLs, ","),
		Time:  began.UTC().Format(time.RFC3339),
		Conns: cfg.Conns, Channels: len(l.groups), Publishers: len(l.pubConn), Payload: cfg.Payload,
		DurationS: cfg.Duration.Seconds(), Workers: max(nproc, 1), ConnectErrors: map[string]int{},
	}
	if cfg.Scenario == ScenarioDM {
		res.Channels = l.nGroups
	}
	if len(l.pubConn) == 0 {
		res.Payload = 0
	} else {
		res.Publish = cfg.PublishVia
		if cfg.PublishVia == PublishAPI && cfg.API.Batch > 1 {
			res.APIBatch = cfg.API.Batch
		}
	}
	var connLat Histogram
	var first, last time.Time
	for _, h := range handles {
		st, err := h.connected(ctx)
		if err != nil {
			return nil, fmt.Errorf("connect phase: %w", err)
		}
		res.Connected += st.Connected
		res.ConnectFailed += st.Failed
		if st.Latency != nil {
			connLat.Merge(st.Latency)
		}
		for k, v := range st.Errors {
			res.ConnectErrors[k] += v
		}
		if first.IsZero() || st.First.Before(first) {
			first = st.First
		}
		if st.Last.After(last) {
			last = st.Last
		}
	}
	if d := last.Sub(first); d > 0 {
		res.ConnectRate = round3(float64(res.Connected) / d.Seconds())
	}
	res.ConnectP50MS, res.ConnectP99MS = ms(connLat.Quantile(0.5)), ms(connLat.Quantile(0.99))
	if len(res.ConnectErrors) == 0 {
		res.ConnectErrors = nil
	}
	if res.Connected == 0 {
		return []*Result{res}, errors.New("no client could connect")
	}
	logf("%d of %d clients connected in %.1f s", res.Connected, cfg.Conns, last.Sub(first).Seconds())
	connected, err := ps.sample()
	if err != nil {
		return nil, err
	}

	base := *res
	var results []*Result
	for k := range l.windows() {
		// The first window starts once the clients have settled, the next
		// ones right after the previous one's drain.
		gap := cfg.Settle
		if k > 0 {
			gap = cfg.Settle / 4
		}
		win := Window{Index: k, Start: time.Now().Add(gap)}
		win.End = win.Start.Add(cfg.Duration)
		wr := base
		r, err := measure(ctx, &cfg, l, handles, ps, win, &wr, before, connected, limit)
		if err != nil {
			return results, err
		}
		results = append(results, r)
		if cfg.SweepMaxP99 > 0 && (r.Latency.P99 > ms(cfg.SweepMaxP99) || r.Lost > 0) {
			logf("window %d at %.0f msg/s: p99 %.1f ms, %d lost: the sweep stops", k, r.Rate, r.Latency.P99, r.Lost)
			break
		}
	}
	return results, nil
}

// measure runs one window on connected clients and completes res with
// what it measured.
func measure(ctx context.Context, cfg *Config, l layout, handles []handle, ps procSet, win Window, res *Result,
	before, connected map[string]ProcSample, limit uint64) (*Result, error) {
	if len(l.pubRates) > 0 {
		res.Rate = cfg.Rates[win.Index]
	}
	// The log's count before anything of this window can be sent: counted
	// once the window had begun, it could already hold a first message
	// sent by a publisher that started on time while this goroutine was
	// late (a loaded machine), which then counted as missing.
	var logBase uint64
	if cfg.LogCount != nil && len(l.pubConn) > 0 {
		var err error
		if logBase, err = cfg.LogCount(ctx, l.prefix); err != nil {
			return nil, fmt.Errorf("count the message log: %w", err)
		}
	}
	for _, h := range handles {
		if err := h.start(win); err != nil {
			return nil, err
		}
	}
	sleepUntil(ctx, win.Start)
	atStart, err := ps.sample()
	if err != nil {
		return nil, err
	}
	machine0, merr := SampleMachine()
	acked := make([]uint64, len(l.pubConn))
	for _, h := range handles {
		a, err := h.published(ctx)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		for p := range min(len(a), len(acked)) {
			acked[p] += a[p]
		}
	}
	// Every publisher has stopped: the log should now fill up with every
	// acknowledged message. Watch it while the workers drain.
	pubDone := time.Now()
	var ackedAll uint64
	for _, a := range acked {
		ackedAll += a
	}
	var logc chan logCount
	if cfg.LogCount != nil && ackedAll > 0 {
		logc = make(chan logCount, 1)
		go func() { logc <- waitLog(ctx, *cfg, l.prefix, logBase+ackedAll) }()
	}
	for _, h := range handles {
		if err := h.finish(acked); err != nil {
			return nil, err
		}
	}
	var (
		tally     Tally
		active    = make([]int, l.nGroups)
		lat, ack  Histogram
		reconn    Histogram
		toolCPU   time.Duration
		lastBack  time.Time
		dropAt    time.Time
		windowEnd time.Time
	)
	res.PublishErrors = map[string]uint64{}
	res.DropReasons = map[string]int{}
	res.StormErrors = map[string]int{}
	res.Procs = nil
	for _, h := range handles {
		r, err := h.result(ctx)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		if err := tally.Add(r.Tally); err != nil {
			return nil, err
		}
		for g, n := range r.Active {
			if g < len(active) {
				active[g] += n
			}
		}
		lat.Merge(r.Latency)
		ack.Merge(r.Ack)
		if r.Reconnect != nil {
			reconn.Merge(r.Reconnect)
		}
		res.Duplicated += r.Dups
		res.Foreign += r.Foreign
		res.OtherEvents += r.Other
		res.Dropped += r.Dropped
		for k, v := range r.DropReasons {
			res.DropReasons[k] += v
		}
		for k, v := range r.PublishErrors {
			res.PublishErrors[k] += v
		}
		for k, v := range r.StormErrors {
			res.StormErrors[k] += v
		}
		res.LatenessMS = max(res.LatenessMS, ms(r.Lateness))
		res.Reconnected += r.Reconnected
		res.NotBack += r.NotBack
		res.Retries += r.Retries
		res.Resumed += r.Resumed
		res.NotRecovered += r.NotRecovered
		toolCPU += r.CPU
		if r.LastBack.After(lastBack) {
			lastBack = r.LastBack
		}
		if !r.DropAt.IsZero() && (dropAt.IsZero() || r.DropAt.Before(dropAt)) {
			dropAt = r.DropAt
		}
		if r.End.After(windowEnd) {
			windowEnd = r.End
		}
	}
	if logc != nil {
		lc := <-logc
		if lc.err != nil {
			return nil, lc.err
		}
		want := logBase + ackedAll
		res.Log = &LogResult{Stored: lc.stored - min(logBase, lc.stored), Missing: want - min(lc.stored, want)}
		if lc.complete {
			res.Log.LagS = round3(max(lc.at.Sub(pubDone).Seconds(), 0))
		}
	}
	after, err := ps.sample()
	if err != nil {
		return nil, err
	}
	machine1, merr1 := SampleMachine()
	if len(tally.Pubs) > 0 {
		acct := tally.Account(func(p int) int { return active[l.pubGroup[p]] })
		res.Acked, res.Expected, res.Delivered, res.Lost, res.Unacked = acct.Acked, acct.Expected, acct.Delivered, acct.Lost, acct.Unacked
		for _, pt := range tally.Pubs {
			res.Sent += pt.Sent
		}
	}
	res.DeliveriesPerS = round3(float64(res.Delivered) / cfg.Duration.Seconds())
	res.Latency, res.AckLatency = latOf(&lat), latOf(&ack)
	if cfg.Scenario == ScenarioStorm {
		if !lastBack.IsZero() && !dropAt.IsZero() {
			res.StormS = round3(lastBack.Sub(dropAt).Seconds())
		}
		res.ReconnectP50, res.ReconnectP99 = ms(reconn.Quantile(0.5)), ms(reconn.Quantile(0.99))
	}
	if len(res.PublishErrors) == 0 {
		res.PublishErrors = nil
	}
	if len(res.DropReasons) == 0 {
		res.DropReasons = nil
	}
	if len(res.StormErrors) == 0 {
		res.StormErrors = nil
	}
	window := windowEnd.Sub(win.Start).Seconds()
	if window <= 0 {
		window = cfg.Duration.Seconds()
	}
	res.WindowS = round3(window)
	if merr == nil && merr1 == nil {
		// What the machine did beyond the measured processes and the load
		// tool: other work skews every figure of the window.
		busy := (machine1.Busy - machine0.Busy).Seconds()
		accounted := toolCPU.Seconds()
		for name := range after {
			accounted += (after[name].CPU - atStart[name].CPU).Seconds()
		}
		res.MachineCores = round3(busy / window)
		res.OtherCores = round3(max(busy-accounted, 0) / window)
	}
	res.LoadTool = ToolResult{CPUS: round3(toolCPU.Seconds()), Cores: round3(toolCPU.Seconds() / window), FileLimit: limit}
	if res.Delivered > 0 {
		res.LoadTool.CPUPerDeliveryUS = round3(float64(toolCPU.Microseconds()) / float64(res.Delivered))
	}
	res.Procs = make(map[string]ProcResult)
	for _, np := range cfg.PIDs {
		pr := res.Procs[np.Name]
		pr.PIDs = append(pr.PIDs, np.PID)
		res.Procs[np.Name] = pr
	}
	for name, pr := range res.Procs {
		cpu := after[name].CPU - atStart[name].CPU
		pr.CPUS = round3(cpu.Seconds())
		pr.Cores = round3(cpu.Seconds() / window)
		if res.Delivered > 0 {
			pr.CPUPerDeliveryUS = round3(float64(cpu.Microseconds()) / float64(res.Delivered))
		}
		if cfg.Scenario == ScenarioIdle && res.Connected > 0 {
			pr.CoresPer10k = round3(pr.Cores / (float64(res.Connected) / 10000))
		}
		ccpu := connected[name].CPU - before[name].CPU
		pr.ConnectCPUS = round3(ccpu.Seconds())
		pr.ConnectCPUPerConnUS = round3(float64(ccpu.Microseconds()) / float64(res.Connected))
		pr.RSSBefore, pr.RSSConn, pr.RSSAfter = before[name].RSS, connected[name].RSS, after[name].RSS
		pr.RSSPerConn = (pr.RSSConn - pr.RSSBefore) / int64(res.Connected)
		res.Procs[name] = pr
	}
	if len(res.Procs) == 0 {
		res.Procs = nil
	}
	return res, nil
}

// logCount is what polling the message log found.
type logCount struct {
	stored   uint64
	complete bool
	at       time.Time
	err      error
}

// waitLog polls the message log every 100 ms until it holds want
// messages under prefix or cfg.LogTimeout passes.
func waitLog(ctx context.Context, cfg Config, prefix string, want uint64) logCount {
	deadline := time.Now().Add(cfg.LogTimeout)
	for {
		n, err := cfg.LogCount(ctx, prefix)
		if err != nil {
			return logCount{err: fmt.Errorf("count the message log: %w", err)}
		}
		now := time.Now()
		if n >= want {
			return logCount{stored: n, complete: true, at: now}
		}
		if now.After(deadline) || ctx.Err() != nil {
			return logCount{stored: n}
		}
		sleepUntil(ctx, now.Add(100*time.Millisecond))
	}
}

// ipv4Targets reports whether every URL's host is an IPv4 address or a
// name (which then resolves to 127.0.0.1 on this machine's loopback): the
// source addresses are IPv4.
func ipv4Targets(urls []string) bool {
	for _, u := range urls {
		if containsColonHost(u) {
			return false
		}
	}
	return true
}

// splitPlan cuts the run into one plan per worker: contiguous blocks of
// clients, so every channel spreads over all workers.
func splitPlan(c *Config, l layout, tokens []string, n int, srcs []string, deadline time.Time) []Plan {
	per := (c.Conns + n - 1) / n
	pubsOf := make(map[int][]int) // client → publishers
	for p, conn := range l.pubConn {
		pubsOf[conn] = append(pubsOf[conn], p)
	}
	var plans []Plan
	for w := range n {
		lo, hi := w*per, min((w+1)*per, c.Conns)
		p := Plan{
			Scenario: c.Scenario, URLs: c.URLs, Insecure: c.Insecure, Sources: srcs,
			Worker: w, Workers: n, Groups: l.groups, NumGroups: l.nGroups, Join: len(l.groups) > 0,
			NumPubs: len(l.pubConn), PubGroups: l.pubGroup, Seqs: l.seqs, PubRates: l.pubRates, Payload: c.Payload,
			ConnectConcurrency: max(c.ConnectConcurrency/n, 1), ConnectTimeout: c.ConnectTimeout,
			EventBuffer: c.EventBuffer, Drain: c.Drain, Quiet: c.Quiet, Deadline: deadline,
		}
		if c.ConnectRate > 0 {
			p.ConnectRate = c.ConnectRate / float64(n)
		}
		if c.PublishVia == PublishAPI {
			api := c.API
			api.Concurrency = max(api.Concurrency/n, 1)
			p.PublishVia, p.API = PublishAPI, &api
		}
		for i := lo; i < hi; i++ {
			for _, pub := range pubsOf[i] {
				p.Pubs = append(p.Pubs, PlanPub{ID: pub, Conn: i - lo, To: l.pubTo[pub]})
			}
			p.Conns = append(p.Conns, PlanConn{Index: i, User: l.users[i], Token: tokens[i], Group: l.group[i]})
		}
		plans = append(plans, p)
	}
	return plans
}

// lockedWriter serialises writes of the progress loop and the run's
// messages.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
