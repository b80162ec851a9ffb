package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaiwa-chat/kaiwa/bus"
)

// nodeFlags name a server process in the heartbeats "kaiwa nodes" lists.
type nodeFlags struct {
	name  *string
	every *time.Duration
}

func (f envFlags) node() nodeFlags {
	return nodeFlags{
		name:  f.str("node-name", "KAIWA_NODE_NAME", "", `this process's name in "kaiwa nodes" (default HOSTNAME/ROLE-..., from the listen address)`),
		every: f.duration("heartbeat", "KAIWA_HEARTBEAT", 5*time.Second, `how often this process puts its heartbeat on the bus for "kaiwa nodes" (0: never)`),
	}
}

// defaultNodeName is HOSTNAME/NAME, NAME the unix socket's file name
// without ".sock" ("ua-v1-0"), or the role, protocol version and port of
// a TCP address ("ua-v1-8090"), or the role alone.
func defaultNodeName(role, protocol, listen string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	name := role
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		name = strings.TrimSuffix(filepath.Base(path), ".sock")
	} else if listen != "" {
		if protocol != "" {
			name += "-" + protocol
		}
		if _, port, err := net.SplitHostPort(listen); err == nil {
			name += "-" + port
		}
	}
	return host + "/" + name
}

// start puts the process's heartbeat on b until the returned stop is
// called (a last one then says it stopped). update fills the fields that
// change.
func (n nodeFlags) start(b *bus.Bus, role, protocol, listen string, update func(*bus.Node)) (stop func()) {
	if *n.every <= 0 {
		return func() {}
	}
	name := *n.name
	if name == "" {
		name = defaultNodeName(role, protocol, listen)
	}
	host, _ := os.Hostname()
	return b.Heartbeat(bus.Node{
		Name: name, Role: role, Build: buildVersion, Protocol: protocol, Host: host, PID: os.Getpid(),
		State: bus.NodeServing,
	}, *n.every, update)
}

// runNodes lists the server processes whose heartbeats the bus holds.
func runNodes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("nodes", getenv, stderr)
	natsURL := f.str("nats-url", "KAIWA_NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma separated")
	prefix := f.str("bus-prefix", "KAIWA_BUS_PREFIX", "kaiwa", "prefix of every bus subject")
	asJSON := f.Bool("json", false, "print one JSON array, for scripts")
	if err := f.Parse(args); err != nil {
		return err
	}
	b, err := bus.Connect(ctx, bus.Config{URL: *natsURL, Prefix: *prefix, Name: "kaiwa-nodes", BindOnly: true})
	if err != nil {
		return err
	}
	defer b.Close()
	nodes, err := b.Nodes(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if nodes == nil {
			nodes = []bus.Node{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(nodes)
	}
	if len(nodes) == 0 {
		fmt.Fprintln(stdout, "no node has sent a heartbeat")
		return nil
	}
	now := time.Now()
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tPROTOCOL\tBUILD\tSTATE\tSESSIONS\tPID\tLAST HEARTBEAT")
	for _, n := range nodes {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", n.Name, n.Role, dash(n.Protocol), n.Build, nodeState(n, now),
			n.Sessions, n.PID, ago(now.Sub(n.Seen)))
	}
	return w.Flush()
}

// nodeState is a node's state as last sent, or "missing" when its
// heartbeats stopped coming without a last one saying it stopped (three
// intervals).
func nodeState(n bus.Node, now time.Time) string {
	if n.State != bus.NodeStopped && now.Sub(n.Seen) > 3*time.Duration(n.EveryMS)*time.Millisecond {
		return "missing"
	}
	return n.State
}

func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.0fs ago", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.0fm ago", d.Minutes())
	}
	return fmt.Sprintf("%.1fh ago", d.Hours())
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
