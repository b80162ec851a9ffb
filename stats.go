package kaiwa

import "context"

// TenantStats is a tenant's health now, gathered from every UA and API
// process: what GET /stats answers. Counts are over the last minute and
// the last hour; the round-trip times are those of the tenant's v2
// clients over the last five minutes.
type TenantStats struct {
	Tenant TenantID `json:"tenant"`
	// At is when the figures were gathered, ms since the epoch.
	At int64 `json:"at"`
	// Processes counts the processes that answered, by kind ("ua",
	// "api", "logwriter").
	Processes          map[string]int `json:"processes"`
	Sessions           SessionStats   `json:"sessions"`
	Messages           WindowCount    `json:"messages"`
	Deliveries         WindowCount    `json:"deliveries"`
	RTT                RTTStats       `json:"rtt_ms"`
	NGBlocked          WindowCount    `json:"ng_blocked"`
	NGMasked           WindowCount    `json:"ng_masked"`
	SlowConsumerCloses WindowCount    `json:"slow_consumer_closes"`
	LogWriter          LogWriterStats `json:"log_writer"`
}

// SessionStats counts the sessions open now.
type SessionStats struct {
	Total     int            `json:"total"`
	ByVersion map[string]int `json:"by_version"`
}

// WindowCount is a count over the last minute and the last hour.
type WindowCount struct {
	LastMinute int64 `json:"last_minute"`
	LastHour   int64 `json:"last_hour"`
}

// RTTStats are round-trip time percentiles in milliseconds over Samples
// measurements (each v2 session is measured about every 5 s).
type RTTStats struct {
	Samples uint64  `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
}

// LogWriterStats describe how far behind the message log is: the largest
// delay from publish to commit of the tenant's messages written in the
// last minute, and how many were written.
type LogWriterStats struct {
	LagMS   int64       `json:"lag_ms"`
	Written WindowCount `json:"written"`
}

// StatsSource answers a tenant's stats, gathered from every process.
type StatsSource interface {
	TenantStats(ctx context.Context, t TenantID) (TenantStats, error)
}

// ChannelCount is a channel and how many messages it had in some time.
type ChannelCount struct {
	Channel  string `json:"ch"`
	Messages int64  `json:"messages"`
}
