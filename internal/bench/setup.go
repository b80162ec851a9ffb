package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// Provisioner prepares what a run needs on the server under test: its
// channels, a token per user, and the channels' members. [StoreSetup]
// writes to the tenant's storage directly; [APISetup] goes through the
// tenant API.
type Provisioner interface {
	// CreateChannels creates channels of the given kind.
	CreateChannels(ctx context.Context, names []string, kind kaiwa.ChannelKind) error
	// IssueTokens returns one token per user, each allowed to join and
	// publish anywhere, valid for ttl.
	IssueTokens(ctx context.Context, users []string, ttl time.Duration) ([]string, error)
	// AddMembers makes users members of channel ch.
	AddMembers(ctx context.Context, ch string, users []string) error
}

// parallel runs fn(i) for i in [0, n) on at most conc goroutines and
// returns the first error; after an error, no new call starts.
func parallel(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for range min(max(conc, 1), max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	return first
}

// StoreSetup provisions through the tenant storage (MySQL), the fastest
// way: many concurrent single-row writes over the store's pool.
type StoreSetup struct {
	Tenant   kaiwa.TenantID
	Tokens   kaiwa.TokenStore
	Channels kaiwa.ChannelStore
	// Concurrency is the number of writes in flight (default 16).
	Concurrency int
}

func (s *StoreSetup) conc() int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return 16
}

// CreateChannels implements [Provisioner].
func (s *StoreSetup) CreateChannels(ctx context.Context, names []string, kind kaiwa.ChannelKind) error {
	return parallel(ctx, len(names), s.conc(), func(ctx context.Context, i int) error {
		_, err := s.Channels.PutChannel(ctx, kaiwa.Channel{Tenant: s.Tenant, Name: names[i], Kind: kind, Title: "benchmark"})
		if err != nil {
			return fmt.Errorf("create channel %s: %w", names[i], err)
		}
		return nil
	})
}

// IssueTokens implements [Provisioner].
func (s *StoreSetup) IssueTokens(ctx context.Context, users []string, ttl time.Duration) ([]string, error) {
	out := make([]string, len(users))
	err := parallel(ctx, len(users), s.conc(), func(ctx context.Context, i int) error {
		tok, err := s.Tokens.IssueToken(ctx, s.Tenant, kaiwa.TokenRequest{
			User: users[i], Name: users[i], TTL: ttl, Join: []string{"*"}, Publish: []string{"*"},
		})
		if err != nil {
			return fmt.Errorf("issue token for %s: %w", users[i], err)
		}
		out[i] = tok.Token
		return nil
	})
	return out, err
}

// AddMembers implements [Provisioner].
func (s *StoreSetup) AddMembers(ctx context.Context, ch string, users []string) error {
	return parallel(ctx, len(users), s.conc(), func(ctx context.Context, i int) error {
		if _, err := s.Channels.AddMember(ctx, s.Tenant, ch, users[i]); err != nil {
			return fmt.Errorf("add %s to %s: %w", users[i], ch, err)
		}
		return nil
	})
}

// APISetup provisions through the tenant API (POST /tokens, PUT
// /channels/{ch}, PUT /channels/{ch}/members/{user}), many requests in
// flight.
type APISetup struct {
	// URL is the API's base, such as http://127.0.0.1:8081/v1/api.
	URL string
	Key string
	// Client makes the requests (default: a client with a 10 s timeout).
	Client *http.Client
	// Concurrency is the number of requests in flight (default 32).
	Concurrency int
}

func (a *APISetup) conc() int {
	if a.Concurrency > 0 {
		return a.Concurrency
	}
	return 32
}

// call makes one API request and decodes a JSON answer into out (when
// not nil). An error answer becomes the *kaiwa.Error it carries.
func (a *APISetup) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := a.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		if ke := apiError(b); ke != nil {
			return fmt.Errorf("%s %s: %w", method, path, ke)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// apiError returns the error an API error answer's body carries
// ({"error": {"code": ..., "message": ...}}), nil when it carries none.
func apiError(body []byte) *kaiwa.Error {
	var e struct {
		Error struct {
			Code    kaiwa.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return nil
	}
	return &kaiwa.Error{Code: e.Error.Code, Message: e.Error.Message}
}

// retry calls fn until it succeeds, fails with an error other than
// rate_limited or unavailable, or 20 attempts have failed.
func retry(ctx context.Context, fn func() error) error {
	backoff := 50 * time.Millisecond
	var err error
	for range 20 {
		if err = fn(); err == nil {
			return nil
		}
		if c := kaiwa.ErrorCode(err); c != kaiwa.CodeRateLimited && c != kaiwa.CodeUnavailable {
			return err
		}
		sleepUntil(ctx, time.Now().Add(backoff))
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return err
}

// CreateChannels implements [Provisioner].
func (a *APISetup) CreateChannels(ctx context.Context, names []string, kind kaiwa.ChannelKind) error {
	return parallel(ctx, len(names), a.conc(), func(ctx context.Context, i int) error {
		return retry(ctx, func() error {
			return a.call(ctx, http.MethodPut, "/channels/"+url.PathEscape(names[i]),
				map[string]string{"kind": string(kind), "title": "benchmark"}, nil)
		})
	})
}

// IssueTokens implements [Provisioner].
func (a *APISetup) IssueTokens(ctx context.Context, users []string, ttl time.Duration) ([]string, error) {
	out := make([]string, len(users))
	err := parallel(ctx, len(users), a.conc(), func(ctx context.Context, i int) error {
		var tok struct {
			Token string `json:"token"`
		}
		err := retry(ctx, func() error {
			return a.call(ctx, http.MethodPost, "/tokens", map[string]any{
				"user": users[i], "name": users[i], "ttl_seconds": int64(ttl / time.Second),
				"join": []string{"*"}, "publish": []string{"*"},
			}, &tok)
		})
		out[i] = tok.Token
		return err
	})
	return out, err
}

// AddMembers implements [Provisioner].
func (a *APISetup) AddMembers(ctx context.Context, ch string, users []string) error {
	return parallel(ctx, len(users), a.conc(), func(ctx context.Context, i int) error {
		return retry(ctx, func() error {
			return a.call(ctx, http.MethodPut, "/channels/"+url.PathEscape(ch)+"/members/"+url.PathEscape(users[i]), nil, nil)
		})
	})
}

// SQLLogCount returns a [Config.LogCount] that counts a tenant's rows of
// the message log table (MySQL schema of package migrations) whose channel
// starts with the prefix.
func SQLLogCount(db *sql.DB, tenant kaiwa.TenantID) func(ctx context.Context, prefix string) (uint64, error) {
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return func(ctx context.Context, prefix string) (uint64, error) {
		var n uint64
		err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages WHERE tenant_id = ? AND channel LIKE ?",
			string(tenant), esc.Replace(prefix)+"%").Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count logged messages: %w", err)
		}
		return n, nil
	}
}
