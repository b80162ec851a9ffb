package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// runNATS runs a NATS server with JetStream in this process: for local
// stacks and benchmarks that want NATS in a process of its own, or, with
// --config, as a node of a NATS cluster (the nats-server of Kaiwa's own
// build, 2.10 or later as the stream's republish needs).
func runNATS(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("nats", getenv, stderr)
	addr := f.str("listen", "KAIWA_NATS_LISTEN", "127.0.0.1:4222", "client address")
	store := f.str("store", "KAIWA_NATS_STORE", "./var/nats", "JetStream store directory")
	config := f.str("config", "KAIWA_NATS_CONFIG", "", "a nats-server configuration file (a cluster node: deploy/nats/nats.conf); --listen and --store are then ignored")
	sublistCache := f.boolean("sublist-cache", "KAIWA_NATS_SUBLIST_CACHE", "keep nats-server's cache of subject matches (off by default: every session's wildcard subscriptions for its direct messages make nats-server walk the whole cache at each subscribe and unsubscribe)")
	profPort := f.integer("prof-port", "KAIWA_NATS_PROF_PORT", 0, "serve Go's profiles (/debug/pprof/) on this port of the listen host (0: off)")
	setGC := f.gcPercent()
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := setGC(); err != nil {
		return err
	}
	var opts *natsserver.Options
	if *config != "" {
		var err error
		if opts, err = natsserver.ProcessConfigFile(*config); err != nil {
			return fmt.Errorf("nats: %w", err)
		}
	} else {
		host, portStr, err := net.SplitHostPort(*addr)
		if err != nil {
			return usageError{fmt.Sprintf("--listen: %v", err)}
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return usageError{fmt.Sprintf("--listen: bad port %q", portStr)}
		}
		opts = &natsserver.Options{Host: host, Port: port, JetStream: true, StoreDir: *store, MaxPayload: 1 << 20, NoSublistCache: !*sublistCache}
	}
	opts.NoSigs = true
	if *profPort != 0 {
		opts.ProfPort = *profPort
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if *config != "" {
		s.ConfigureLogger() // as nats-server logs, to stderr
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats: not ready after 10s")
	}
	fmt.Fprintf(stdout, "nats listening on %s (JetStream store %s)\n", s.ClientURL(), opts.StoreDir)
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
