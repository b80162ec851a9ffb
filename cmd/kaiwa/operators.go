package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/apiserver"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/nginx"
	"github.com/kaiwa-chat/kaiwa/tenants"
	"github.com/kaiwa-chat/kaiwa/versions"
)

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("migrate", getenv, stderr)
	dsn := f.str("mysql-dsn", "KAIWA_MYSQL_DSN", "", "MySQL DSN")
	pos, err := f.parseAll(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"usage: kaiwa migrate up|down|version [--mysql-dsn DSN]"}
	}
	if *dsn == "" {
		return usageError{"--mysql-dsn (or KAIWA_MYSQL_DSN) is required"}
	}
	cmd := pos[0]
	switch cmd {
	case tenants.MigrateUp, tenants.MigrateDown, tenants.MigrateVersion:
	default:
		return usageError{fmt.Sprintf("unknown migrate command %q (up, down, version)", cmd)}
	}
	v, dirty, err := tenants.Migrate(ctx, *dsn, cmd)
	if err != nil {
		return err
	}
	state := "clean"
	if dirty {
		state = "dirty"
	}
	fmt.Fprintf(stdout, "schema version %d (%s)\n", v, state)
	return nil
}

// tenantUsage lists the tenant subcommands.
const tenantUsage = `usage: kaiwa tenant COMMAND [NAME] [flags]

  create NAME [--json]        create a tenant and print its API key once
  list [--json]               list tenants
  keys NAME [--json]          list a tenant's API keys (ids and last use)
  rotate-key NAME [--json]    add a new API key to a tenant and print it once
  revoke-key NAME KEY_ID      revoke one of a tenant's API keys
  settings NAME [--set JSON]  show or change a tenant's settings (applied live)
  disable NAME                refuse a tenant's keys and tokens
  signing-keys NAME [--add JSON | --delete KID]
                              list, add or delete the keys that verify the
                              tenant's signed tokens (applied live)

flags:
`

func runTenant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	f := newFlags("tenant "+sub, getenv, stderr)
	f.Usage = func() {
		fmt.Fprint(f.Output(), tenantUsage)
		f.PrintDefaults()
	}
	dsn := f.str("mysql-dsn", "KAIWA_MYSQL_DSN", "", "MySQL DSN")
	asJSON := f.Bool("json", false, "print one JSON object, for scripts")
	addKey := f.String("add", "", `signing-keys: a key to add, e.g. '{"kid":"k1","alg":"EdDSA","public_key":"-----BEGIN PUBLIC KEY-----..."}'`)
	delKey := f.String("delete", "", "signing-keys: the kid of a key to delete")
	set := f.String("set", "", `settings: a JSON object merged into the tenant's settings, e.g. '{"rate_ops":20,"allowed_versions":["v2"]}'`)
	natsURL := f.str("nats-url", "KAIWA_NATS_URL", "nats://127.0.0.1:4222", "NATS, to tell the servers about a settings change")
	busPrefix := f.str("bus-prefix", "KAIWA_BUS_PREFIX", "kaiwa", "prefix of every bus subject")
	switch sub {
	case "", "help", "-h", "-help", "--help":
		f.SetOutput(stdout)
		f.Usage()
		if sub == "" {
			return usageError{"no tenant command given"}
		}
		return flag.ErrHelp
	}
	pos, err := f.parseAll(args[1:])
	if err != nil {
		return err
	}
	if *dsn == "" {
		return usageError{"--mysql-dsn (or KAIWA_MYSQL_DSN) is required"}
	}
	needName := func() (kaiwa.TenantID, error) {
		if len(pos) != 1 {
			return "", usageError{fmt.Sprintf("usage: kaiwa tenant %s NAME", sub)}
		}
		return kaiwa.TenantID(pos[0]), nil
	}
	store, err := tenants.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	// Changes go through the core, as the API's do. The bus is reached
	// only to announce a change live; the events go straight to the log.
	live := &announcer{url: *natsURL, prefix: *busPrefix}
	defer live.close()
	events := &commandEvents{}
	core := &kaiwa.Core{Tenants: store, Signing: store, Bus: live, Events: events}
	defer func() {
		if err := events.flush(ctx, store); err != nil {
			fmt.Fprintf(stderr, "kaiwa: the change is made, but its event was not logged: %v\n", err)
		}
	}()
	printKey := func(id kaiwa.TenantID, key string) error {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]string{"tenant": string(id), "api_key": key})
		}
		fmt.Fprintf(stdout, "tenant: %s\napi key: %s\n(the key is shown only this once; store it safely)\n", id, key)
		return nil
	}
	switch sub {
	case "create":
		id, err := needName()
		if err != nil {
			return err
		}
		key, err := core.CreateTenant(ctx, kaiwa.ActorCLI, id, string(id))
		if err != nil {
			return err
		}
		return printKey(id, key)
	case "rotate-key":
		id, err := needName()
		if err != nil {
			return err
		}
		key, err := core.AddKey(ctx, kaiwa.ActorCLI, id)
		if err != nil {
			return err
		}
		return printKey(id, key)
	case "disable":
		id, err := needName()
		if err != nil {
			return err
		}
		if err := core.DisableTenant(ctx, kaiwa.ActorCLI, id); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"tenant": id, "disabled": true})
		}
		fmt.Fprintf(stdout, "tenant %s disabled\n", id)
		return nil
	case "keys":
		id, err := needName()
		if err != nil {
			return err
		}
		keys, err := store.APIKeys(ctx, id)
		if err != nil {
			return err
		}
		if *asJSON {
			if keys == nil {
				keys = []kaiwa.APIKey{}
			}
			return json.NewEncoder(stdout).Encode(map[string]any{"tenant": id, "keys": keys})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tREVOKED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", k.ID, stamp(k.CreatedAt), stamp(k.LastUsedAt), stamp(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke-key":
		if len(pos) != 2 {
			return usageError{"usage: kaiwa tenant revoke-key NAME KEY_ID"}
		}
		var keyID int64
		if _, err := fmt.Sscan(pos[1], &keyID); err != nil {
			return usageError{fmt.Sprintf("key id %q is not a number", pos[1])}
		}
		if err := core.RevokeKey(ctx, kaiwa.ActorCLI, kaiwa.TenantID(pos[0]), keyID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d of tenant %s revoked\n", keyID, pos[0])
		return nil
	case "settings":
		id, err := needName()
		if err != nil {
			return err
		}
		st, err := store.TenantSettings(ctx, id)
		if err != nil {
			return err
		}
		if *set != "" {
			// Merge into what is stored (defaults left unset stay defaults).
			if err := json.Unmarshal([]byte(*set), &st); err != nil {
				return usageError{fmt.Sprintf("--set: %v", err)}
			}
			if err := core.SetSettings(ctx, kaiwa.ActorCLI, id, st); err != nil {
				if live.err == nil {
					return err
				}
				fmt.Fprintf(stderr, "kaiwa: settings saved, but the servers were not told (%v); they pick them up as sessions reconnect\n", err)
			}
			if st, err = store.TenantSettings(ctx, id); err != nil {
				return err
			}
		}
		enc := json.NewEncoder(stdout)
		if !*asJSON {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(st)
	case "signing-keys":
		id, err := needName()
		if err != nil {
			return err
		}
		return signingKeys(ctx, core, store, id, *addKey, *delKey, *asJSON, stdout)
	case "list":
		list, err := store.Tenants(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			if list == nil {
				list = []kaiwa.Tenant{}
			}
			return json.NewEncoder(stdout).Encode(map[string]any{"tenants": list})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tNAME\tDISABLED\tCREATED")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", t.ID, t.Name, t.Disabled, t.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
		}
		return tw.Flush()
	}
	return usageError{fmt.Sprintf("unknown tenant command %q (create, list, keys, rotate-key, revoke-key, settings, disable, signing-keys)", sub)}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// announcer is the kaiwa command's [kaiwa.Publisher]: it connects to the
// bus the first time it is used (a command that announces nothing needs no
// NATS) and keeps the first failure, so that the command can tell the
// operator that a change was stored but not announced.
type announcer struct {
	url, prefix string
	b           *bus.Bus
	err         error
}

var _ kaiwa.Publisher = (*announcer)(nil)

// bus returns the connection, made on first use.
func (a *announcer) bus(ctx context.Context) (*bus.Bus, error) {
	if a.b == nil && a.err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		a.b, a.err = bus.Connect(ctx, bus.Config{URL: a.url, Prefix: a.prefix, Name: "kaiwa-tenant-cli", BindOnly: true})
	}
	return a.b, a.err
}

// failed keeps err as the first failure, and returns it.
func (a *announcer) failed(err error) error {
	if err != nil && a.err == nil {
		a.err = err
	}
	return err
}

// Publish implements [kaiwa.Publisher].
func (a *announcer) Publish(ctx context.Context, m kaiwa.Message) (kaiwa.Message, error) {
	b, err := a.bus(ctx)
	if err != nil {
		return m, err
	}
	m, err = b.Publish(ctx, m)
	return m, a.failed(err)
}

// PublishControl implements [kaiwa.Publisher].
func (a *announcer) PublishControl(ctx context.Context, c kaiwa.Control) error {
	b, err := a.bus(ctx)
	if err != nil {
		return err
	}
	return a.failed(b.PublishControl(ctx, c))
}

// DeleteMessage implements [kaiwa.Publisher].
func (a *announcer) DeleteMessage(ctx context.Context, t kaiwa.TenantID, ch, id string) error {
	b, err := a.bus(ctx)
	if err != nil {
		return err
	}
	return a.failed(b.DeleteMessage(ctx, t, ch, id))
}

// close closes the connection, when there is one.
func (a *announcer) close() {
	if a.b != nil {
		_ = a.b.Close()
	}
}

// commandEvents is the kaiwa command's [kaiwa.Recorder]: it keeps the
// events of a command and, when the command is done, writes them straight
// to the event log (a short-lived command need not go through the bus and
// its log writer, which may not be running).
type commandEvents struct {
	mu     sync.Mutex
	events []kaiwa.Event
}

// Record implements [kaiwa.Recorder].
func (r *commandEvents) Record(e kaiwa.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// flush writes the events kept so far to log, each with an id of its own.
func (r *commandEvents) flush(ctx context.Context, log kaiwa.EventLog) error {
	r.mu.Lock()
	events := r.events
	r.events = nil
	r.mu.Unlock()
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		events[i].ID = "cli-" + strings.TrimPrefix(kaiwa.NewCID(), "~")
	}
	return log.AppendEvents(ctx, events)
}

// hostSockets is [nginx.DirSockets] for a host that may run no UAs
// (perVersion 0) or no API processes (withAPI false).
func hostSockets(dir string, perVersion int, withAPI bool) func(string) ([]string, string) {
	sockets := nginx.DirSockets(dir, max(perVersion, 0))
	return func(v string) ([]string, string) {
		ua, api := sockets(v)
		if !withAPI {
			api = ""
		}
		return ua, api
	}
}

func runNginxConfig(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlags("nginx-config", getenv, stderr)
	prefix := f.str("prefix", "KAIWA_NGINX_PREFIX", "./var/nginx", "nginx prefix directory (pid, logs, temp files)")
	sockets := f.str("sockets", "KAIWA_SOCKET_DIR", "./var/run", "directory of the UA and API unix sockets")
	perVersion := f.integer("ua-per-version", "KAIWA_UA_PER_VERSION", 2, "UA processes (sockets) per version (0: a host without UAs, no /{v}/ws routes)")
	noAPI := f.boolean("no-api", "KAIWA_NGINX_NO_API", "a host without API processes: no /{v}/api routes")
	httpAddr := f.str("http", "KAIWA_HTTP_LISTEN", nginx.DefaultHTTPListen, "plain HTTP listen address")
	httpsAddr := f.str("https", "KAIWA_HTTPS_LISTEN", "127.0.0.1:8443", "HTTPS listen address (empty: none)")
	cert := f.str("cert", "KAIWA_TLS_CERT", "", "TLS certificate (PEM)")
	key := f.str("key", "KAIWA_TLS_KEY", "", "TLS key (PEM)")
	selfSigned := f.str("self-signed", "KAIWA_NGINX_SELF_SIGNED", "", "with --https and no --cert/--key: make (or reuse) a self-signed certificate for localhost in this directory (development, benchmarks)")
	user := f.str("user", "KAIWA_NGINX_USER", "", "nginx worker user (when the master runs as root)")
	perIPConns := f.integer("per-ip-conns", "KAIWA_NGINX_PER_IP_CONNS", nginx.DefaultPerIPConns, "requests one client address may have open at once, WebSockets included (-1: no limit)")
	perIPRate := f.integer("per-ip-upgrade-rate", "KAIWA_NGINX_PER_IP_UPGRADE_RATE", nginx.DefaultPerIPUpgradeRate, "WebSocket upgrades per second one client address may make (-1: no limit)")
	perIPBurst := f.integer("per-ip-upgrade-burst", "KAIWA_NGINX_PER_IP_UPGRADE_BURST", nginx.DefaultPerIPUpgradeBurst, "upgrades above the rate one client address may make at once")
	uaRate := f.integer("ua-connect-rate", "KAIWA_NGINX_UA_CONNECT_RATE", nginx.DefaultUAConnectRate, "WebSocket upgrades per second sent to each UA process: a version's rate is this times its UA processes")
	upRate := f.integer("upgrade-rate", "KAIWA_NGINX_UPGRADE_RATE", 0, "WebSocket upgrades per second of every version, whatever its UA processes (0: from --ua-connect-rate)")
	upBurst := f.integer("upgrade-burst", "KAIWA_NGINX_UPGRADE_BURST", 0, "upgrades waiting above a version's rate before nginx answers 429 (0: ten seconds' worth)")
	workers := f.integer("workers", "KAIWA_NGINX_WORKERS", 0, "nginx worker processes (0: one per core); each holds two open files per proxied WebSocket, within --open-file-limit")
	nofile := f.integer("open-file-limit", "KAIWA_NGINX_OPEN_FILE_LIMIT", 0, "hard open-file limit nginx runs under, e.g. systemd's LimitNOFILE (0: this process's own)")
	out := f.str("out", "KAIWA_NGINX_CONF", "", "write the config here instead of stdout")
	vfile := f.versionsFile()
	if err := f.Parse(args); err != nil {
		return err
	}
	reg, err := versions.Load(*vfile)
	if err != nil {
		return err
	}
	absPrefix, err := filepath.Abs(*prefix)
	if err != nil {
		return err
	}
	absSockets, err := filepath.Abs(*sockets)
	if err != nil {
		return err
	}
	if *workers < 0 {
		return usageError{"--workers must not be negative"}
	}
	if *nofile < 0 {
		return usageError{"--open-file-limit must not be negative"}
	}
	if *httpsAddr != "" && *cert == "" && *key == "" && *selfSigned != "" {
		var err error
		if *cert, *key, err = nginx.SelfSignedCert(*selfSigned); err != nil {
			return err
		}
	}
	if *httpsAddr != "" && (*cert == "" || *key == "") {
		return usageError{"--https needs --cert and --key, or --self-signed DIR (or --https '')"}
	}
	cfg := nginx.Config{
		Registry:    reg,
		Prefix:      absPrefix,
		HTTPListen:  *httpAddr,
		HTTPSListen: *httpsAddr,
		CertFile:    *cert,
		KeyFile:     *key,
		Sockets:     hostSockets(absSockets, *perVersion, !*noAPI),
		User:        *user,
		// nginx lets through every body the API accepts.
		ClientMaxBodyBytes: apiserver.DefaultNGBodyLimit,
		WorkerProcesses:    *workers,
		UAConnectRate:      *uaRate,
		UpgradeRate:        *upRate,
		UpgradeBurst:       *upBurst,
		PerIPConns:         *perIPConns,
		PerIPUpgradeRate:   *perIPRate,
		PerIPUpgradeBurst:  *perIPBurst,
		OpenFileLimit:      uint64(*nofile),
	}
	w := stdout
	if *out != "" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	return nginx.Render(w, cfg)
}
