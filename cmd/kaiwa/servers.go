package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/apiserver"
	"github.com/kaiwa-chat/kaiwa/bus"
	"github.com/kaiwa-chat/kaiwa/console"
	"github.com/kaiwa-chat/kaiwa/egress"
	"github.com/kaiwa-chat/kaiwa/signing"
	"github.com/kaiwa-chat/kaiwa/tenants"
	"github.com/kaiwa-chat/kaiwa/tenants/ngword"
	"github.com/kaiwa-chat/kaiwa/ua"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// liveVersion returns a live version of the registry (the built-in one
// with the versions file applied) by name.
func liveVersion(file, name string) (versions.Version, error) {
	reg, err := versions.Load(file)
	if err != nil {
		return versions.Version{}, err
	}
	v, ok := reg.Get(name)
	if !ok {
		return v, usageError{fmt.Sprintf("unknown protocol version %q", name)}
	}
	if !v.Live() {
		return v, usageError{fmt.Sprintf("protocol version %q is retired", name)}
	}
	return v, nil
}

func connectBus(ctx context.Context, c common, name string, log *slog.Logger) (*bus.Bus, error) {
	return bus.Connect(ctx, bus.Config{
		URL: *c.natsURL, Name: name, Prefix: *c.busPrefix, Logger: log,
		HistoryMaxAge: *c.historyAge, HistoryMaxMsgs: int64(*c.historyN), Replicas: *c.replicas,
	})
}

// serveHTTP serves h on addr until ctx is done, then shuts it down; onStop
// runs first (the UA closes its WebSockets there).
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger, onStop func(context.Context)) error {
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	if onStop != nil {
		wg.Add(1)
		go func() { defer wg.Done(); onStop(sctx) }()
	}
	err = srv.Shutdown(sctx)
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func runUA(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newFlags("ua", getenv, stderr)
	addr := f.str("listen", "KAIWA_LISTEN", "127.0.0.1:8090", `address: "unix:/path.sock" or "host:port"`)
	version := f.str("version", "KAIWA_VERSION", "v1", "protocol version served")
	vfile := f.versionsFile()
	queue := f.integer("send-queue-bytes", "KAIWA_SEND_QUEUE_BYTES", 1<<20, "each session's outbox, in bytes: a client whose queued frames would pass it is closed as slow (4008)")
	ping := f.duration("ping-interval", "KAIWA_PING_INTERVAL", 25*time.Second, "WebSocket ping interval")
	drain := f.duration("drain-window", "KAIWA_DRAIN_WINDOW", 30*time.Second, "at shutdown, reconnect requests are spread over this long")
	logReqs := f.boolean("log-requests", "KAIWA_LOG_REQUESTS", "log every connect (WebSocket upgrade) at info, tenant but never token")
	metricsAddr := metricsListen(f)
	grace := f.duration("presence-grace", "KAIWA_PRESENCE_GRACE", 3*time.Second, "how long a user whose session ended is not told to the channel as leaving; back by then (a reconnect), neither the leave nor the join is told (0: every leave at once)")
	stormGrace := f.duration("presence-storm-grace", "KAIWA_PRESENCE_STORM_GRACE", 30*time.Second, "the presence grace in a channel whose members drop together (its UA holds the leaves of a tenth of them): players back from a mass drop within it flash neither a leave nor a join (0: the presence grace)")
	fence := f.duration("fence-after", "KAIWA_FENCE_AFTER", 5*time.Second, "when the bus has been unreachable this long, ask every session to reconnect elsewhere, refuse new ones and fail /readyz until it is back (0: never)")
	node := f.node()
	hookPrivate := f.boolean("hook-allow-private", "KAIWA_HOOK_ALLOW_PRIVATE", "let tenants' before-send hooks be http URLs and private, loopback or link-local addresses (tests, private deployments)")
	setGC := f.gcPercent()
	c := f.common()
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := setGC(); err != nil {
		return err
	}
	v, err := liveVersion(*vfile, *version)
	if err != nil {
		return err
	}
	log := c.logger(stderr, "ua").With("version", v.Name)
	b, err := connectBus(ctx, c, "kaiwa-ua-"+v.Name, log)
	if err != nil {
		return err
	}
	defer b.Close()
	remote := b.Directory()
	// Signed tokens are verified here, with keys the directory sends once.
	dir, signSub, err := signing.Attach(remote, b, log)
	if err != nil {
		return err
	}
	defer signSub.Unsubscribe()
	srv, err := ua.New(ua.Config{
		Version: v, Directory: dir, Moderation: remote, Bus: b, Recorder: b, Logger: log, Presence: b,
		HookClient: egress.Policy{AllowPrivate: *hookPrivate}.Client(5 * time.Second), Limits: b,
		Players: b.Players(), Stream: b,
		CompileNG:      func(l kaiwa.NGList) (ua.Matcher, error) { return ngword.Compile(l.Words, l.Allow) },
		SendQueueBytes: *queue, PingInterval: *ping, DrainWindow: *drain, FenceAfter: orNever(*fence),
		PresenceGrace: orNever(*grace), PresenceStormGrace: orNever(*stormGrace),
		Stats: b.Stats(), Metrics: b.Collectors(),
	})
	if err != nil {
		return err
	}
	st, err := b.ServeStats("ua")
	if err != nil {
		return err
	}
	defer st.Unsubscribe()
	if err := serveMetrics(ctx, *metricsAddr, srv.MetricsHandler(), log); err != nil {
		return err
	}
	stopBeat := node.start(b, "ua", v.Name, *addr, func(n *bus.Node) {
		n.Sessions = srv.Sessions()
		switch {
		case srv.Draining():
			n.State = bus.NodeDraining
		case srv.Fenced():
			n.State = bus.NodeFenced
		}
	})
	defer stopBeat()
	var h http.Handler = srv
	if *logReqs {
		h = logRequests(srv, log)
	}
	return serveHTTP(ctx, *addr, h, log, func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	})
}

func runAPI(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newFlags("api", getenv, stderr)
	addr := f.str("listen", "KAIWA_LISTEN", "127.0.0.1:8081", `address: "unix:/path.sock" or "host:port"`)
	version := f.str("version", "KAIWA_VERSION", "v1", "API version served")
	vfile := f.versionsFile()
	dsn := f.str("mysql-dsn", "KAIWA_MYSQL_DSN", "", "MySQL DSN, e.g. user:pass@tcp(127.0.0.1:3306)/kaiwa")
	readDSN := f.str("mysql-read-dsn", "KAIWA_MYSQL_READ_DSN", "", "a MySQL replica's DSN: GET messages and GET events read the logs from it (default: --mysql-dsn)")
	withLog := f.boolean("logwriter", "KAIWA_LOGWRITER", "also run the log writer in this process")
	cacheTTL := f.duration("cache-ttl", "KAIWA_CACHE_TTL", time.Second, "how long directory answers to UAs, API key checks and the settings and channels system messages read are cached")
	purgeEvery := f.duration("purge-every", "KAIWA_PURGE_EVERY", 10*time.Minute, "how often logs past each tenant's retention are purged (0: never, in this process)")
	logReqs := f.boolean("log-requests", "KAIWA_LOG_REQUESTS", "log every request at info, tenant but never key")
	metricsAddr := metricsListen(f)
	consoleSecret := f.str("console-secret", "KAIWA_CONSOLE_SECRET", "", "signs the web console's sessions: every API process serving /console/ needs the same one, of at least 32 bytes (empty: a random one, so logins end with the process)")
	node := f.node()
	hooks := f.str("webhooks", "KAIWA_WEBHOOKS", "on", `"on": this process delivers webhooks (with the other API processes), "off": it leaves them to others`)
	allowPrivate := f.boolean("webhook-allow-private", "KAIWA_WEBHOOK_ALLOW_PRIVATE", "let tenants' endpoints be http URLs and private, loopback or link-local addresses (tests, private deployments)")
	setGC := f.gcPercent()
	c := f.common()
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := setGC(); err != nil {
		return err
	}
	if *dsn == "" {
		return usageError{"--mysql-dsn (or KAIWA_MYSQL_DSN) is required"}
	}
	if n := len(*consoleSecret); n > 0 && n < console.MinSecret {
		return usageError{fmt.Sprintf("--console-secret must be at least %d bytes", console.MinSecret)}
	}
	if *hooks != "on" && *hooks != "off" {
		return usageError{`--webhooks is "on" or "off"`}
	}
	egressPolicy := egress.Policy{AllowPrivate: *allowPrivate}
	v, err := liveVersion(*vfile, *version)
	if err != nil {
		return err
	}
	log := c.logger(stderr, "api").With("version", v.Name)
	store, err := tenants.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	logs := store // what the log reads go to
	if *readDSN != "" {
		if logs, err = tenants.Open(ctx, *readDSN); err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		defer logs.Close()
	}
	b, err := connectBus(ctx, c, "kaiwa-api-"+v.Name, log)
	if err != nil {
		return err
	}
	defer b.Close()
	cache := tenants.NewCache(store, *cacheTTL)
	// Every change goes through the core; changes made through this
	// process drop its cached directory answers at once.
	core := &kaiwa.Core{
		Tenants:   invalidatingTenants{store, cache},
		Tokens:    invalidatingTokens{store, cache},
		Channels:  invalidatingChannels{store, cache},
		Log:       store,
		NG:        invalidatingNG{store, cache},
		Sanctions: invalidatingSanctions{store, cache},
		Signing:   store,
		Webhooks:  store,
		URLs:      egressPolicy,
		Bus:       b,
		Events:    b,
		Stream:    b,
		Player:    store,
		Lookup:    cache,
	}
	// New sessions' lookups bring the user's own state too, by the core's
	// rules.
	playersAsUA := core.Players(kaiwa.ActorUA)
	dir, err := b.ServeDirectory(directoryWithPlayers{cache, playersAsUA.(kaiwa.PlayerStarter)}, core.Moderation(kaiwa.ActorUA), 64)
	if err != nil {
		return err
	}
	defer dir.Unsubscribe()
	players, err := b.ServePlayers(playersAsUA, 32)
	if err != nil {
		return err
	}
	defer players.Unsubscribe()
	// Changes made through other API processes make this one's cached
	// answers stale: drop them when their live change goes by.
	ctl, err := b.SubscribeControls(func(c *kaiwa.Control) {
		switch {
		case c.Kind == kaiwa.ControlNGWords:
			cache.InvalidateNG(c.Tenant)
		case c.Kind == kaiwa.ControlSettings, c.Kind == kaiwa.ControlKeys:
			cache.Invalidate(c.Tenant)
		case c.User != "":
			cache.InvalidateUser(c.Tenant, c.User)
		}
	})
	if err != nil {
		return err
	}
	defer ctl.Unsubscribe()
	st, err := b.ServeStats("api")
	if err != nil {
		return err
	}
	defer st.Unsubscribe()
	reg := processRegistry(b)
	if err := serveMetrics(ctx, *metricsAddr, gathered(reg), log); err != nil {
		return err
	}
	defer node.start(b, "api", v.Name, *addr, nil)()
	var wg sync.WaitGroup
	defer wg.Wait()
	if *withLog {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &bus.LogWriter{Bus: b, Log: store, Events: store, Logger: log.With("component", "logwriter")}
			if err := w.Run(ctx); err != nil {
				log.Error("log writer stopped", "err", err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			store.RunIndexer(ctx, 0, log.With("component", "indexer"))
		}()
	}
	if *hooks == "on" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWebhooks(ctx, b, store, core, egressPolicy, log.With("component", "webhooks"))
		}()
	}
	if *purgeEvery > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); purgeLoop(ctx, store, *purgeEvery, log) }()
	}
	h := apiserver.NewServer(apiserver.Config{
		Core:      core,
		Tenants:   tenants.CachedKeys{TenantStore: store, Cache: cache},
		Channels:  store,
		Log:       logs,
		NG:        store,
		Sanctions: store,
		Events:    logs,
		Signing:   store,
		Webhooks:  store,
		Presence:  b,
		Stats:     b,
		Registry:  reg,
		Console: console.New(console.Config{
			Core: core, Keys: store, Reads: logs, Channels: store, Log: logs, Events: logs,
			NG: store, Sanctions: store, Stats: b, Secret: []byte(*consoleSecret),
			Logger: log.With("component", "console"),
		}),
		Version: v.Name,
		Logger:  log,
		Ready: func(ctx context.Context) error {
			return errors.Join(store.Ping(ctx), b.Ping(ctx))
		},
	})
	if *logReqs {
		h = logRequests(h, log)
	}
	return serveHTTP(ctx, *addr, h, log, nil)
}

func runLogWriter(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	f := newFlags("logwriter", getenv, stderr)
	dsn := f.str("mysql-dsn", "KAIWA_MYSQL_DSN", "", "MySQL DSN")
	metricsAddr := metricsListen(f)
	node := f.node()
	setGC := f.gcPercent()
	c := f.common()
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := setGC(); err != nil {
		return err
	}
	if *dsn == "" {
		return usageError{"--mysql-dsn (or KAIWA_MYSQL_DSN) is required"}
	}
	log := c.logger(stderr, "logwriter")
	store, err := tenants.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	b, err := connectBus(ctx, c, "kaiwa-logwriter", log)
	if err != nil {
		return err
	}
	defer b.Close()
	st, err := b.ServeStats("logwriter")
	if err != nil {
		return err
	}
	defer st.Unsubscribe()
	if err := serveMetrics(ctx, *metricsAddr, gathered(processRegistry(b)), log); err != nil {
		return err
	}
	defer node.start(b, "logwriter", "", "", nil)()
	go store.RunIndexer(ctx, 0, log.With("component", "indexer"))
	w := &bus.LogWriter{Bus: b, Log: store, Events: store, Logger: log}
	return w.Run(ctx)
}

// directoryWithPlayers is the API tier's cached directory, which answers
// new sessions' lookups in batches, with the core's player state beside
// it: [bus.Bus.ServeDirectory] then answers a session's lookup and its
// user's own state in one round trip.
type directoryWithPlayers struct {
	*tenants.Cache
	kaiwa.PlayerStarter
}

// orNever turns a flag's 0 ("never", "none": --fence-after,
// --presence-grace) into the negative duration the UA's configuration
// reads that way (its 0 is the default).
func orNever(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// invalidatingTenants drops the API tier's cached key checks of a tenant
// whose key it revokes or which it disables, so this process never admits
// the key again; the others hear of it live ([kaiwa.ControlKeys]).
type invalidatingTenants struct {
	kaiwa.TenantStore
	cache *tenants.Cache
}

func (t invalidatingTenants) RevokeKey(ctx context.Context, id kaiwa.TenantID, keyID int64) error {
	err := t.TenantStore.RevokeKey(ctx, id, keyID)
	t.cache.Invalidate(id)
	return err
}

func (t invalidatingTenants) DisableTenant(ctx context.Context, id kaiwa.TenantID) error {
	err := t.TenantStore.DisableTenant(ctx, id)
	t.cache.Invalidate(id)
	return err
}

// invalidatingTokens drops the API tier's cached identities of a user whose
// tokens it revokes, so this process never admits a revoked token again;
// other processes' caches expire within their TTL.
type invalidatingTokens struct {
	kaiwa.TokenStore
	cache *tenants.Cache
}

func (t invalidatingTokens) RevokeTokens(ctx context.Context, tenant kaiwa.TenantID, user string) (int, error) {
	n, err := t.TokenStore.RevokeTokens(ctx, tenant, user)
	t.cache.InvalidateUser(tenant, user)
	return n, err
}

// purgeLoop deletes what is past each tenant's retention, now and then
// every interval, in small batches.
func purgeLoop(ctx context.Context, store *tenants.Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := store.Purge(ctx, time.Now(), 0)
		if err != nil && ctx.Err() == nil {
			log.Warn("purge", "err", err)
		} else if st.Messages+st.Events+st.Tokens+st.Sanctions > 0 {
			log.Info("purged", "messages", st.Messages, "events", st.Events, "tokens", st.Tokens, "sanctions", st.Sanctions, "statements", st.Statements)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// invalidatingNG drops the cached NG list when it changes through this
// process.
type invalidatingNG struct {
	kaiwa.NGStore
	cache *tenants.Cache
}

func (n invalidatingNG) PutNGList(ctx context.Context, t kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	out, err := n.NGStore.PutNGList(ctx, t, l)
	n.cache.InvalidateNG(t)
	return out, err
}

func (n invalidatingNG) AddNGWords(ctx context.Context, t kaiwa.TenantID, l kaiwa.NGList) (kaiwa.NGList, error) {
	out, err := n.NGStore.AddNGWords(ctx, t, l)
	n.cache.InvalidateNG(t)
	return out, err
}

func (n invalidatingNG) DeleteNGWord(ctx context.Context, t kaiwa.TenantID, w string) (kaiwa.NGList, error) {
	out, err := n.NGStore.DeleteNGWord(ctx, t, w)
	n.cache.InvalidateNG(t)
	return out, err
}

// invalidatingSanctions drops a user's cached sanctions when they change
// through this process.
type invalidatingSanctions struct {
	kaiwa.ModerationStore
	cache *tenants.Cache
}

func (m invalidatingSanctions) PutSanction(ctx context.Context, s kaiwa.Sanction) error {
	err := m.ModerationStore.PutSanction(ctx, s)
	m.cache.InvalidateUser(s.Tenant, s.User)
	return err
}

func (m invalidatingSanctions) DeleteSanction(ctx context.Context, t kaiwa.TenantID, user string, kind kaiwa.SanctionKind) error {
	err := m.ModerationStore.DeleteSanction(ctx, t, user, kind)
	m.cache.InvalidateUser(t, user)
	return err
}

// invalidatingChannels drops cached channel and membership answers that a
// change made through this process makes stale.
type invalidatingChannels struct {
	kaiwa.ChannelStore
	cache *tenants.Cache
}

func (c invalidatingChannels) PutChannel(ctx context.Context, ch kaiwa.Channel) (bool, error) {
	created, err := c.ChannelStore.PutChannel(ctx, ch)
	c.cache.InvalidateChannel(ch.Tenant, ch.Name)
	return created, err
}

func (c invalidatingChannels) DeleteChannel(ctx context.Context, t kaiwa.TenantID, ch string) error {
	err := c.ChannelStore.DeleteChannel(ctx, t, ch)
	c.cache.Invalidate(t)
	return err
}

func (c invalidatingChannels) AddMember(ctx context.Context, t kaiwa.TenantID, ch, user string) (bool, error) {
	added, err := c.ChannelStore.AddMember(ctx, t, ch, user)
	c.cache.InvalidateUser(t, user)
	c.cache.InvalidateChannel(t, ch)
	return added, err
}

func (c invalidatingChannels) RemoveMember(ctx context.Context, t kaiwa.TenantID, ch, user string) error {
	err := c.ChannelStore.RemoveMember(ctx, t, ch, user)
	c.cache.InvalidateUser(t, user)
	c.cache.InvalidateChannel(t, ch)
	return err
}
