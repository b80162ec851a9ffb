package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kaiwa-chat/kaiwa/versions"

	"github.com/kaiwa-chat/kaiwa/internal/devstack"
)

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("dev", getenv, stderr)
	varDir := f.str("var", "KAIWA_VAR_DIR", devstack.DefaultVarDir, "directory for everything the stack writes")
	dsn := f.str("mysql-dsn", "KAIWA_MYSQL_DSN", "", "existing MySQL database (empty: a private MariaDB under the var directory)")
	natsURL := f.str("nats-url", "KAIWA_NATS_URL", "", "existing NATS server with JetStream (empty: run one in-process)")
	natsListen := f.str("nats-listen", "KAIWA_NATS_LISTEN", "127.0.0.1:4223", "address of the in-process NATS server")
	perVersion := f.integer("ua-per-version", "KAIWA_UA_PER_VERSION", 2, "UA processes per protocol version")
	httpAddr := f.str("http", "KAIWA_HTTP_LISTEN", "127.0.0.1:8080", "nginx plain HTTP address")
	httpsAddr := f.str("https", "KAIWA_HTTPS_LISTEN", "127.0.0.1:8443", "nginx HTTPS address")
	drain := f.duration("drain-window", "KAIWA_DEV_DRAIN_WINDOW", devstack.DefaultDrainWindow,
		"the UAs' drain window: at Ctrl-C and SIGHUP each UA spreads its clients' reconnect requests over this long (production UAs: 30s)")
	demoDir := f.str("demo-dir", "KAIWA_DEMO_DIR", "sdk/js/demo",
		"directory served at /demo/: the TypeScript SDK's demo page (left out when it is not there; empty: none)")
	vfile := f.versionsFile()
	if err := f.Parse(args); err != nil {
		return err
	}
	reg, err := versions.Load(*vfile)
	if err != nil {
		return err
	}
	if *vfile != "" {
		// The children read the same file.
		abs, err := filepath.Abs(*vfile)
		if err != nil {
			return err
		}
		os.Setenv("KAIWA_VERSIONS_FILE", abs)
	}
	// SIGHUP replaces the UA processes one at a time (a rolling upgrade).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	restart := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case restart <- struct{}{}:
			default:
			}
		}
	}()
	return devstack.Run(ctx, devstack.Config{
		Restart:      restart,
		Registry:     reg,
		VarDir:       *varDir,
		MySQLDSN:     *dsn,
		NATSURL:      *natsURL,
		NATSListen:   *natsListen,
		UAPerVersion: *perVersion,
		HTTPListen:   *httpAddr,
		HTTPSListen:  *httpsAddr,
		DrainWindow:  *drain,
		DemoDir:      *demoDir,
		Stdout:       stdout,
		Stderr:       stderr,
	})
}
