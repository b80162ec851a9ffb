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

// runNATS runs a NATS server with JetStream in this process, for local
// stacks and benchmarks that want NATS in a process of its own. Production
// runs a NATS cluster instead.
func runNATS(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("nats", getenv, stderr)
	addr := f.str("listen", "KAIWA_NATS_LISTEN", "127.0.0.1:4222", "client address")
	store := f.str("store", "KAIWA_NATS_STORE", "./var/nats", "JetStream store directory")
	if err := f.Parse(args); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return usageError{fmt.Sprintf("--listen: %v", err)}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return usageError{fmt.Sprintf("--listen: bad port %q", portStr)}
	}
	s, err := natsserver.NewServer(&natsserver.Options{
		Host: host, Port: port, JetStream: true, StoreDir: *store, NoSigs: true,
		MaxPayload: 1 << 20,
	})
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats: not ready after 10s")
	}
	fmt.Fprintf(stdout, "nats listening on %s (JetStream store %s)\n", s.ClientURL(), *store)
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}
