package testenv

import (
	"errors"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// NATS starts an in-process NATS server with JetStream on a free loopback
// port, storing into a temporary directory, and returns its client URL. The
// server is shut down in t.Cleanup.
func NATS(t testing.TB) string {
	t.Helper()
	s := StartNATS(t, -1, t.TempDir())
	return s.ClientURL()
}

// StartNATS starts an in-process NATS server with JetStream on port (-1 for
// any free port) storing into dir, and shuts it down in t.Cleanup. Tests
// that restart NATS call it again with the same port and dir.
func StartNATS(t testing.TB, port int, dir string) *natsserver.Server {
	t.Helper()
	s, err := startNATS(port, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopNATS(s) })
	return s
}

// startNATS starts an in-process NATS server with JetStream on port
// storing into dir, and waits until it takes connections.
func startNATS(port int, dir string) (*natsserver.Server, error) {
	opts := &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      port,
		NoLog:     true,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  dir,
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("testenv: new nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		stopNATS(s)
		return nil, errors.New("testenv: nats server not ready")
	}
	return s, nil
}

// stopNATS shuts s down and waits until it has.
func stopNATS(s *natsserver.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
