package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"runtime/debug"
	"strings"
	"testing"
)

// runArgs runs the program with args and the environment env.
func runArgs(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runArgsCtx(context.Background(), env, args...)
}

// runArgsCtx runs the program with args and the environment env until
// ctx ends.
func runArgsCtx(ctx context.Context, env map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestHelpOfEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"tenant", "-h"}, {"tenant", "--help"}, {"tenant", "help"}, {"tenant", "create", "-h"},
		{"ua", "-h"}, {"api", "-h"}, {"nodes", "-h"}, {"logwriter", "-h"}, {"migrate", "-h"}, {"dev", "-h"}, {"chat", "-h"}, {"bench", "-h"},
	} {
		stdout, stderr, err := runArgs(t, nil, args...)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("kaiwa %s: %v", strings.Join(args, " "), err)
			continue
		}
		if exitCode(err) != 0 && err != nil {
			t.Errorf("kaiwa %s exits %d", strings.Join(args, " "), exitCode(err))
		}
		if out := stdout + stderr; !strings.Contains(out, "usage") && !strings.Contains(out, "-") {
			t.Errorf("kaiwa %s printed no help: %q", strings.Join(args, " "), out)
		}
	}
	stdout, _, _ := runArgs(t, nil, "tenant", "-h")
	for _, sub := range []string{"create", "list", "keys", "rotate-key", "revoke-key", "settings", "disable", "-mysql-dsn"} {
		if !strings.Contains(stdout, sub) {
			t.Errorf("kaiwa tenant -h does not mention %s:\n%s", sub, stdout)
		}
	}
}

func TestMalformedEnvironmentFailsNamingTheVariable(t *testing.T) {
	for _, tt := range []struct {
		env, value, want string
		args             []string
	}{
		{"KAIWA_PING_INTERVAL", "25", `KAIWA_PING_INTERVAL="25" is not a duration`, []string{"ua"}},
		{"KAIWA_UA_PER_VERSION", "two", `KAIWA_UA_PER_VERSION="two" is not an integer`, []string{"dev"}},
		{"KAIWA_BENCH_CONNECT_RATE", "fast", `KAIWA_BENCH_CONNECT_RATE="fast" is not a number`, []string{"bench", "idle"}},
		{"KAIWA_STREAM_REPLICAS", "three", `KAIWA_STREAM_REPLICAS="three" is not an integer`, []string{"api"}},
		{"KAIWA_HISTORY_MAX_AGE", "72", `KAIWA_HISTORY_MAX_AGE="72" is not a duration`, []string{"logwriter"}},
	} {
		_, _, err := runArgs(t, map[string]string{tt.env: tt.value}, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || exitCode(err) != 2 {
			t.Errorf("kaiwa %s with %s=%q: %v, want an error containing %q", tt.args[0], tt.env, tt.value, err, tt.want)
		}
	}
}

// TestServersSetTheirGCTarget: a server command sets the collector's
// target from --gc-percent (KAIWA_GC_PERCENT), leaves it alone when GOGC
// is in the environment, and refuses a target too low to be one. (Not
// parallel: the target is the test process's.)
func TestServersSetTheirGCTarget(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	gc := func() int { return debug.SetGCPercent(100) }

	// The log writer sets the target before it finds its DSN missing.
	if _, _, err := runArgs(t, nil, "logwriter"); exitCode(err) != 2 {
		t.Fatalf("logwriter without a DSN: %v, want a usage error", err)
	}
	if got := gc(); got != defaultGCPercent {
		t.Errorf("default target %d, want %d", got, defaultGCPercent)
	}
	runArgs(t, map[string]string{"KAIWA_GC_PERCENT": "350"}, "logwriter")
	if got := gc(); got != 350 {
		t.Errorf("KAIWA_GC_PERCENT=350: target %d", got)
	}
	runArgs(t, map[string]string{"GOGC": "150"}, "logwriter", "--gc-percent", "300")
	if got := gc(); got != 100 {
		t.Errorf("with GOGC set, the target became %d, want it left alone", got)
	}
	_, _, err := runArgs(t, nil, "ua", "--gc-percent", "10")
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "gc-percent") {
		t.Errorf("ua --gc-percent 10: %v, want a usage error naming the flag", err)
	}
}
