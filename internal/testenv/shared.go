package testenv

import (
	"errors"
	"fmt"
	"os"
)

// Shared is what [RunShared] starts for a whole test binary.
type Shared struct {
	// MySQL is the DSN of a fresh database with every migration applied.
	MySQL string
	// NATS is the client URL of an in-process NATS server with JetStream.
	NATS string
}

// RunShared starts one MySQL database and one NATS server for a whole test
// binary, calls run with them, tears them down and returns run's result. It
// is for TestMain, when a package's tests are many and each needs little:
// run sets up what they share and returns m.Run(). The tests must not
// interfere with one another (each uses its own tenants, say), since they
// run in parallel over the same database and server. When either cannot
// start, RunShared says why on stderr and returns 1.
func RunShared(run func(Shared) int) int {
	s, stop, err := startShared()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := run(s)
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// startShared starts the database and the server of [RunShared]; stop
// tears both down.
func startShared() (s Shared, stop func() error, err error) {
	var undo []func() error
	stop = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, stop())
		}
	}()

	server, err := envServerDSN()
	if err != nil {
		return s, nil, err
	}
	db, err := waitAdmin(server)
	if err != nil {
		return s, nil, err
	}
	undo = append(undo, db.Close)
	dsn, drop, err := createDatabase(db, server)
	if err != nil {
		return s, nil, err
	}
	undo = append(undo, drop)
	s.MySQL = dsn

	dir, err := os.MkdirTemp("", "kaiwa-nats-")
	if err != nil {
		return s, nil, fmt.Errorf("testenv: nats directory: %w", err)
	}
	undo = append(undo, func() error { return os.RemoveAll(dir) })
	ns, err := startNATS(-1, dir)
	if err != nil {
		return s, nil, err
	}
	undo = append(undo, func() error { stopNATS(ns); return nil })
	s.NATS = ns.ClientURL()
	return s, stop, nil
}
