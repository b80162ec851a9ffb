// Command kaiwa is Kaiwa's one binary: the UA and API servers, the log
// writer, operator commands (migrations, tenants, nginx config), a local
// development stack, and a small interactive chat client.
//
// Run "kaiwa help" for the subcommands. Every flag falls back to an
// environment variable (KAIWA_MYSQL_DSN, KAIWA_NATS_URL, ...), named in the
// flag's help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// buildVersion is set at build time with -ldflags "-X main.buildVersion=...".
var buildVersion = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kaiwa:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks an error in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0 // help was asked for and printed
	case errors.As(err, &u):
		return 2
	}
	return 1
}

const usage = `kaiwa: multi-tenant chat and messaging for games

usage: kaiwa COMMAND [flags] [args]

servers:
  ua            serve game clients' WebSockets for one protocol version
  api           serve the tenant HTTPS API for one version (and the UAs' directory)
  logwriter     write the message and event logs from the stream to MySQL

operators:
  migrate up|down|version          apply or inspect the MySQL schema
  tenant create NAME [--json]      create a tenant and print its API key once
  tenant list [--json]             list tenants
  tenant keys NAME [--json]        list a tenant's API keys (ids and last use)
  tenant rotate-key NAME [--json]  add a new API key to a tenant and print it once
  tenant revoke-key NAME KEY_ID    revoke one of a tenant's API keys
  tenant settings NAME [--set JSON] show or change a tenant's settings (applied live)
  tenant disable NAME              refuse a tenant's keys and tokens
  nginx-config                     render the nginx configuration from the versions registry
  nodes [--json]                   list the server processes by their heartbeats: build, state, sessions

development:
  dev           run the whole stack locally (MariaDB, NATS, API, UAs, nginx)
  nats          run a NATS server with JetStream in its own process (local stacks, benchmarks; --config: a cluster node)
  chat          interactive chat client for one user token
  bench         load tool: idle, fanout, room, dm, storm scenarios and the bare reference server
  version       print the build version

"kaiwa COMMAND -h" lists a command's flags and their environment variables.
`

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "ua":
		return runUA(ctx, rest, getenv, stderr)
	case "api":
		return runAPI(ctx, rest, getenv, stderr)
	case "logwriter":
		return runLogWriter(ctx, rest, getenv, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "tenant":
		return runTenant(ctx, rest, getenv, stdout, stderr)
	case "nginx-config":
		return runNginxConfig(ctx, rest, getenv, stdout, stderr)
	case "nodes":
		return runNodes(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, getenv, stdout, stderr)
	case "nats":
		return runNATS(ctx, rest, getenv, stdout, stderr)
	case "chat":
		return runChat(ctx, rest, getenv, stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kaiwa", buildVersion)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}
