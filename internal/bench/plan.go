package bench

import (
	"encoding/json"
	"time"
)

// The scenarios.
const (
	// ScenarioIdle connects N clients and holds them: memory per
	// connection, idle CPU, connect rate and latency.
	ScenarioIdle = "idle"
	// ScenarioFanout spreads N subscribers over C channels, with
	// publishers in every channel at a target rate.
	ScenarioFanout = "fanout"
	// ScenarioRoom puts everyone in one channel (a world chat during an
	// event).
	ScenarioRoom = "room"
	// ScenarioDM pairs the clients up; each sends direct messages to its
	// partner.
	ScenarioDM = "dm"
	// ScenarioStorm drops every client at once and reconnects them all:
	// time until all are back and the server work it caused. With a
	// rate, publishers (who stay connected) run through the window and the
	// drop comes a third into it: v1 clients miss what is said while they
	// are away, v2 clients resume and should lose nothing.
	ScenarioStorm = "storm"
	// ScenarioMixed is fanout with clients of several protocol versions
	// together: its URLs name at least two versions (/v1/ws, /v2/ws),
	// and clients take them in turn.
	ScenarioMixed = "mixed"
)

// Scenarios lists the scenarios in the order the help text shows them.
var Scenarios = []string{ScenarioIdle, ScenarioFanout, ScenarioRoom, ScenarioDM, ScenarioStorm, ScenarioMixed}

// Plan is one worker's share of a run: the clients it connects and the
// publishers among them. The coordinator sends it to a worker process as
// JSON on stdin.
type Plan struct {
	Scenario string   `json:"scenario"`
	URLs     []string `json:"urls"`
	Insecure bool     `json:"insecure,omitempty"`
	// Sources are the local addresses to dial from.
	Sources []string `json:"sources,omitempty"`
	// Worker numbers this worker among Workers.
	Worker  int `json:"worker"`
	Workers int `json:"workers"`

	Conns []PlanConn `json:"conns"`
	// Groups are the names of the channels the clients are in (none for
	// idle and dm: a dm group is a pair, named by its direct channel).
	Groups []string `json:"groups,omitempty"`
	// NumGroups is the number of groups of the whole run.
	NumGroups int `json:"num_groups"`
	// Join sends a join op for a group the client is not already in
	// when ready (open channels, the bare server).
	Join bool `json:"join,omitempty"`

	Pubs []PlanPub `json:"pubs,omitempty"`
	// NumPubs is the number of publishers of the whole run, PubGroups
	// the group of each. In window k, publisher p's messages carry the
	// publisher id k*NumPubs+p.
	NumPubs   int   `json:"num_pubs"`
	PubGroups []int `json:"pub_groups,omitempty"`
	// Seqs is the most messages one publisher sends.
	Seqs int `json:"seqs"`
	// PubRates is each publisher's rate in each window, in messages per
	// second.
	PubRates []float64 `json:"pub_rates,omitempty"`
	// Payload is the size of each message's data object, in bytes.
	Payload int `json:"payload,omitempty"`
	// PublishVia is how the publishers send: [PublishWS] ("" too) or
	// [PublishAPI], to the tenant API that API names, with this worker's
	// share of the run's requests in flight.
	PublishVia string     `json:"publish_via,omitempty"`
	API        *APITarget `json:"api,omitempty"`

	ConnectConcurrency int `json:"connect_concurrency"`
	// ConnectRate bounds this worker's new connections per second (0:
	// only the concurrency bounds it).
	ConnectRate float64 `json:"connect_rate,omitempty"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	EventBuffer    int           `json:"event_buffer"`
	// Drain is the longest wait for deliveries after the publishers stop;
	// Quiet the wait for late duplicates once everything expected came.
	Drain time.Duration `json:"drain"`
	Quiet time.Duration `json:"quiet"`
	// Deadline is the hard end of the worker, whatever happens.
	Deadline time.Time `json:"deadline"`
}

// PlanConn is one client of a [Plan].
type PlanConn struct {
	// Index numbers the client in the whole run.
	Index int    `json:"i"`
	User  string `json:"u,omitempty"`
	Token string `json:"k,omitempty"`
	// Group is the client's group, -1 for none.
	Group int `json:"g"`
}

// PlanPub is one publisher of a [Plan]: a client that also sends, or,
// with [PublishAPI], a stream of posts to the tenant API that the plan
// runs beside that client.
type PlanPub struct {
	// ID numbers the publisher in the whole run; it is the "p" of its
	// payloads.
	ID int `json:"id"`
	// Conn is the index of the publishing client in [Plan.Conns] (with
	// [PublishAPI], of the client the publisher is planned beside).
	Conn int `json:"c"`
	// To is the partner a dm publisher writes to; say publishers write to
	// their group's channel.
	To string `json:"to,omitempty"`
}

// Window is a measurement window the coordinator gives every worker.
type Window struct {
	// Index numbers the window (and its rate) from 0.
	Index int       `json:"index"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ConnectStats is how a worker's connect phase went.
type ConnectStats struct {
	Connected int `json:"connected"`
	Failed    int `json:"failed"`
	// First and Last are when the first attempt started and the last
	// client became ready.
	First   time.Time  `json:"first"`
	Last    time.Time  `json:"last"`
	Latency *Histogram `json:"latency"`
	// Errors counts failures by message (a few distinct ones).
	Errors map[string]int `json:"errors,omitempty"`
}

// Progress is a worker's running count, reported every second.
type Progress struct {
	Phase     string        `json:"phase"`
	Window    int           `json:"window"`
	Connected int           `json:"connected"`
	Failed    int           `json:"failed"`
	Sent      uint64        `json:"sent"`
	Delivered uint64        `json:"delivered"`
	Errors    uint64        `json:"errors"`
	Dropped   int           `json:"dropped"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
}

// WorkerResult is what one worker measured.
type WorkerResult struct {
	// Active is, per group, the clients connected and in the group when
	// the window started: each should receive every message of the
	// group's publishers.
	Active []int `json:"active"`
	Tally  Tally `json:"tally"`
	// Latency is the end-to-end latency of first deliveries; Ack the
	// time from send to the server's ok.
	Latency *Histogram `json:"latency"`
	Ack     *Histogram `json:"ack"`
	// Delivered counts first deliveries; Dups, Foreign the rest.
	Delivered uint64 `json:"delivered"`
	Dups      uint64 `json:"dups"`
	Foreign   uint64 `json:"foreign"`
	// Other counts events that are not messages (presence, ...).
	Other uint64 `json:"other"`
	// PublishErrors counts refused or failed sends by error code.
	PublishErrors map[string]uint64 `json:"publish_errors,omitempty"`
	// Lateness is the most a publisher fell behind its schedule.
	Lateness time.Duration `json:"lateness"`
	// Dropped counts clients the server or the network ended during the
	// window, by reason.
	Dropped     int            `json:"dropped"`
	DropReasons map[string]int `json:"drop_reasons,omitempty"`
	// CPU is this worker's own CPU time during the window and drain.
	CPU time.Duration `json:"cpu"`
	// End is when the worker's window (with its drain) ended.
	End time.Time `json:"end"`
	// Storm: clients back after the drop, those that never came back,
	// when the last one was back, reconnect latency, and retries.
	DropAt      time.Time  `json:"drop_at,omitzero"`
	Reconnected int        `json:"reconnected,omitempty"`
	NotBack     int        `json:"not_back,omitempty"`
	LastBack    time.Time  `json:"last_back,omitzero"`
	Reconnect   *Histogram `json:"reconnect,omitempty"`
	Retries     int        `json:"retries,omitempty"`
	// Resumed counts v2 "resumed" events, NotRecovered those that said
	// history no longer covered the gap.
	Resumed      uint64         `json:"resumed,omitempty"`
	NotRecovered uint64         `json:"not_recovered,omitempty"`
	StormErrors  map[string]int `json:"storm_errors,omitempty"`
}

// workerMsg is one line a worker process writes on stdout.
type workerMsg struct {
	Kind      string          `json:"kind"` // "connected", "progress", "published", "result", "error"
	Connected *ConnectStats   `json:"connected,omitempty"`
	Progress  *Progress       `json:"progress,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Acked     []uint64        `json:"acked,omitempty"`
	Error     string          `json:"error,omitempty"`
}
