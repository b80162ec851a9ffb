package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// envFlags is a flag set whose flags fall back to environment variables.
// An environment value that does not parse is an error of [envFlags.Parse],
// naming the variable, never silently replaced by the default.
type envFlags struct {
	*flag.FlagSet
	getenv func(string) string
	bad    *[]error // malformed environment values
}

func newFlags(name string, getenv func(string) string, stderr io.Writer) envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return envFlags{fs, getenv, new([]error)}
}

// Parse parses args, then reports the environment values that did not
// parse (a flag given on the command line does not excuse them).
func (f envFlags) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if len(*f.bad) > 0 {
		return usageError{errors.Join(*f.bad...).Error()}
	}
	return nil
}

// badEnv records a malformed environment value.
func (f envFlags) badEnv(env, v, want string) {
	*f.bad = append(*f.bad, fmt.Errorf("%s=%q is not %s", env, v, want))
}

func (f envFlags) def(env, fallback string) string {
	if v := f.getenv(env); v != "" {
		return v
	}
	return fallback
}

// String defines a string flag with an environment fallback.
func (f envFlags) str(name, env, fallback, help string) *string {
	return f.String(name, f.def(env, fallback), fmt.Sprintf("%s (env %s)", help, env))
}

func (f envFlags) boolean(name, env string, help string) *bool {
	b := false
	if v := f.getenv(env); v != "" {
		p, err := strconv.ParseBool(v)
		if err != nil {
			f.badEnv(env, v, "a boolean (true, false, 1, 0)")
		}
		b = p
	}
	return f.Bool(name, b, fmt.Sprintf("%s (env %s)", help, env))
}

func (f envFlags) duration(name, env string, fallback time.Duration, help string) *time.Duration {
	d := fallback
	if v := f.getenv(env); v != "" {
		p, err := time.ParseDuration(v)
		if err != nil {
			f.badEnv(env, v, "a duration with a unit (25s, 1m30s)")
		} else {
			d = p
		}
	}
	return f.Duration(name, d, fmt.Sprintf("%s (env %s)", help, env))
}

func (f envFlags) integer(name, env string, fallback int, help string) *int {
	n := fallback
	if v := f.getenv(env); v != "" {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			f.badEnv(env, v, "an integer")
		} else {
			n = p
		}
	}
	return f.Int(name, n, fmt.Sprintf("%s (env %s)", help, env))
}

// defaultGCPercent is the servers' garbage-collection target (Go's GOGC):
// the heap may grow to three times what is live before a collection.
// Most of a server's heap is its connections' long-lived state, which
// every collection marks again; with Go's default of 100 the collector was
// a fifth of a UA's CPU while clients connected (docs/benchmarks.md, "The
// connect path").
const defaultGCPercent = 200

// gcPercent defines --gc-percent for a server command and returns what
// applies it once the flags are parsed: nothing when GOGC is set in the
// environment, which the Go runtime has applied already and which wins.
// GOMEMLIMIT, Go's soft memory limit, still bounds the heap: near it the
// collector runs as often as it must.
func (f envFlags) gcPercent() func() error {
	n := f.integer("gc-percent", "KAIWA_GC_PERCENT", defaultGCPercent,
		"the garbage collector's target, as Go's GOGC: the heap grows by this percentage of what is live before a collection (more memory, less CPU; GOGC in the environment wins)")
	return func() error {
		if *n < 25 {
			return usageError{fmt.Sprintf("--gc-percent %d: at least 25", *n)}
		}
		if f.getenv("GOGC") == "" {
			debug.SetGCPercent(*n)
		}
		return nil
	}
}

// common flags shared by the servers.
type common struct {
	natsURL    *string
	busPrefix  *string
	logLevel   *string
	historyAge *time.Duration
	historyN   *int
	replicas   *int
}

func (f envFlags) common() common {
	return common{
		natsURL:    f.str("nats-url", "KAIWA_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated"),
		busPrefix:  f.str("bus-prefix", "KAIWA_BUS_PREFIX", "kaiwa", "prefix of every bus subject"),
		logLevel:   f.str("log-level", "KAIWA_LOG_LEVEL", "info", "log level: debug, info, warn, error"),
		historyAge: f.duration("history-max-age", "KAIWA_HISTORY_MAX_AGE", 72*time.Hour, "how long the stream keeps messages (history, resume, the log's buffer); every process must agree"),
		historyN:   f.integer("history-max-msgs", "KAIWA_HISTORY_MAX_MSGS", -1, "most messages the stream keeps (-1: no limit); every process must agree"),
		replicas:   f.integer("stream-replicas", "KAIWA_STREAM_REPLICAS", 1, "JetStream replicas of the streams (3 in a NATS cluster)"),
	}
}

func (c common) logger(stderr io.Writer, component string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(*c.logLevel))
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", component)
}

// listen opens "unix:/path" (replacing a stale socket file; mode 0666 so
// nginx's workers can connect) or a TCP "host:port".
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			ln.Close()
			return nil, fmt.Errorf("chmod socket: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// parseAll parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func (f envFlags) parseAll(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, err
		}
		if f.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
}

// versionsFile defines the flag naming the versions file (see
// versions.Load).
func (f envFlags) versionsFile() *string {
	return f.str("versions", "KAIWA_VERSIONS_FILE", "", "JSON file setting each protocol version's lifecycle (deprecated, retired, tenant-only)")
}
