package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// The ways publishers send ([Config.PublishVia]).
const (
	// PublishWS makes each publisher a client that sends the say op (dm:
	// the dm op) on its own connection. It is the default.
	PublishWS = "ws"
	// PublishAPI makes the publishers a game server: each message is a
	// system message posted to the tenant API (POST
	// {api}/channels/{ch}/messages) over keep-alive HTTP connections, with
	// a bounded number of requests in flight ([APITarget.Concurrency]).
	// The publishers are no clients, so every client of a channel is due
	// every message of it. Fanout and room only.
	PublishAPI = "api"
)

// DefaultAPIConcurrency is the default of [APITarget.Concurrency].
const DefaultAPIConcurrency = 64

// APITarget is the tenant API that [PublishAPI] posts through.
type APITarget struct {
	// URL is the API's base, such as http://127.0.0.1:8081/v1/api, or
	// https://127.0.0.1:8443/v1/api through nginx (loopback only).
	URL string `json:"url"`
	// Key is an API key of the run's tenant.
	Key string `json:"key"`
	// Concurrency bounds the requests in flight (default
	// [DefaultAPIConcurrency]): of the whole run in a [Config], of one
	// worker in a [Plan].
	Concurrency int `json:"concurrency,omitempty"`
	// Batch, above 1, posts the messages in batches of up to Batch (POST
	// {api}/messages/batch), as a game server that gathers its posts for
	// up to [batchLinger] would; 0 or 1 posts each on its own.
	Batch int `json:"batch,omitempty"`
}

// batchLinger is how long a batch of [APITarget.Batch] waits for more
// messages after its first.
const batchLinger = 5 * time.Millisecond

// postTimeout bounds one post, as a say is bounded.
const postTimeout = 10 * time.Second

// apiPoster posts system messages to the tenant API over keep-alive
// connections, at most conc of them. It is safe for concurrent use.
type apiPoster struct {
	base   string // the API's base URL, without a trailing slash
	auth   string // the Authorization header
	client *http.Client
}

func newAPIPoster(t APITarget, insecure bool) *apiPoster {
	conc := max(t.Concurrency, 1)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     90 * time.Second,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback benchmark against a self-signed dev certificate
	}
	return &apiPoster{base: strings.TrimSuffix(t.URL, "/"), auth: "Bearer " + t.Key, client: &http.Client{Transport: tr}}
}

// channelURL returns the URL that posts to channel ch.
func (a *apiPoster) channelURL(ch string) string {
	return a.base + "/channels/" + url.PathEscape(ch) + "/messages"
}

// postError is a post the API answered with a status other than 2xx.
type postError struct {
	Status int
	// Code is the error code the answer carried ("" for none).
	Code kaiwa.Code
}

func (e *postError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, e.Code)
}

// post sends body (a message request: {"data": ...}) to the channel URL
// u (see [apiPoster.channelURL]). Only a 2xx answer is an
// acknowledgement; another is a *postError. post does not retry: a
// retried post without a cid is a second message.
func (a *apiPoster) post(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read to the end, so that the connection is reused.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	pe := &postError{Status: resp.StatusCode}
	if ke := apiError(b); ke != nil {
		pe.Code = ke.Code
	}
	return pe
}

// close releases the poster's idle connections.
func (a *apiPoster) close() { a.client.CloseIdleConnections() }

// apiPost is one message an API publisher hands to the request pool.
type apiPost struct {
	id  int // publisher id in the ledger (window k's)
	n   int64
	due time.Time
	ch  string
	url string
}

// publishAPI runs the plan's publishers from win.Start until win.End as
// posts to the tenant API: one pacer per publisher, as [worker.publish]
// has, hands each message when due to a pool of Concurrency request
// goroutines. A publisher that finds every request goroutine busy waits,
// and the wait shows as lateness. Its messages go to its group's channel,
// whether or not the client it was planned beside is connected: the
// publisher is not that client.
func (w *worker) publishAPI(ctx context.Context, k int, rate float64, limit int64, win Window) {
	jobs := make(chan apiPost)
	var pool sync.WaitGroup
	if size := w.plan.API.Batch; size > 1 {
		batches := make(chan []apiPost)
		pool.Add(1)
		go func() {
			defer pool.Done()
			defer close(batches)
			gatherBatches(jobs, batches, size, batchLinger)
		}()
		runPool(&pool, w.plan.API.Concurrency, batches, func(b []apiPost) { w.postBatch(ctx, k, b) })
	} else {
		runPool(&pool, w.plan.API.Concurrency, jobs, func(j apiPost) { w.postOne(ctx, k, j) })
	}
	var pubs sync.WaitGroup
	for _, pp := range w.plan.Pubs {
		if pp.ID < 0 || pp.ID >= len(w.plan.PubGroups) {
			continue
		}
		g := w.plan.PubGroups[pp.ID]
		if g < 0 || g >= len(w.plan.Groups) {
			continue
		}
		ch := w.plan.Groups[g]
		u := w.poster.channelURL(ch)
		id := k*w.plan.NumPubs + pp.ID
		pacer := NewPacer(win.Start.Add(pubOffset(pp.ID, w.plan.NumPubs, rate)), rate, limit)
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for {
				n, due, ok := pacer.Next(ctx, win.End)
				if !ok {
					return
				}
				select {
				case jobs <- apiPost{id: id, n: n, due: due, ch: ch, url: u}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	pubs.Wait()
	close(jobs)
	pool.Wait()
}

// postOne posts one message, its data carrying the send time as a say's
// does, and accounts for it.
func (w *worker) postOne(ctx context.Context, k int, j apiPost) {
	now := time.Now()
	storeMax(&w.lateness[k], int64(now.Sub(j.due)))
	// A new buffer each time: the transport may still hold the body after
	// the answer.
	body := make([]byte, 0, max(w.plan.Payload, minPayload)+24)
	body = append(body, `{"data":`...)
	body = AppendPayload(body, Payload{P: j.id, N: int(j.n), T: now.UnixNano()}, w.plan.Payload)
	body = append(body, '}')
	pctx, cancel := context.WithTimeout(ctx, postTimeout)
	err := w.poster.post(pctx, j.url, body)
	cancel()
	w.account(k, j.id, int(j.n), now, err)
}

// runPool starts n goroutines (at least one), counted in wg, that call f
// with each item of in until it is closed.
func runPool[T any](wg *sync.WaitGroup, n int, in <-chan T, f func(T)) {
	for range max(n, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range in {
				f(x)
			}
		}()
	}
}

// gatherBatches hands the posts of jobs on as batches of up to size: a
// batch goes when it is full or linger after its first post.
func gatherBatches(jobs <-chan apiPost, batches chan<- []apiPost, size int, linger time.Duration) {
	var (
		batch []apiPost
		timer *time.Timer
		due   <-chan time.Time
	)
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch = nil
		}
		if timer != nil {
			timer.Stop()
			due = nil
		}
	}
	for {
		select {
		case j, ok := <-jobs:
			if !ok {
				flush()
				return
			}
			batch = append(batch, j)
			if len(batch) == 1 {
				timer = time.NewTimer(linger)
				due = timer.C
			}
			if len(batch) >= size {
				flush()
			}
		case <-due:
			due = nil
			flush()
		}
	}
}

// postBatch posts the messages of b in one call (POST {api}/messages/batch),
// each one's data carrying the send time, and accounts for each by its
// result.
func (w *worker) postBatch(ctx context.Context, k int, b []apiPost) {
	now := time.Now()
	body := make([]byte, 0, len(b)*(max(w.plan.Payload, minPayload)+48)+16)
	body = append(body, `{"messages":[`...)
	for i, j := range b {
		storeMax(&w.lateness[k], int64(now.Sub(j.due)))
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"ch":`...)
		body = strconv.AppendQuote(body, j.ch)
		body = append(body, `,"data":`...)
		body = AppendPayload(body, Payload{P: j.id, N: int(j.n), T: now.UnixNano()}, w.plan.Payload)
		body = append(body, '}')
	}
	body = append(body, "]}"...)
	pctx, cancel := context.WithTimeout(ctx, postTimeout)
	errs := w.poster.postBatch(pctx, body, len(b))
	cancel()
	for i, j := range b {
		w.account(k, j.id, int(j.n), now, errs[i])
	}
}

// postBatch sends body (a batch request of n messages) to the batch URL.
// errs[i] is message i's outcome: nil when the answer says it was
// published, a *postError with the code of its result, or the call's
// error for every message when the call failed.
func (a *apiPoster) postBatch(ctx context.Context, body []byte, n int) (errs []error) {
	errs = make([]error, n)
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/messages/batch", bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		pe := &postError{Status: resp.StatusCode}
		if ke := apiError(b); ke != nil {
			pe.Code = ke.Code
		}
		return fail(pe)
	}
	var answer struct {
		Results []struct {
			ID    string `json:"id"`
			Error *struct {
				Code kaiwa.Code `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &answer); err != nil || len(answer.Results) != n {
		return fail(&postError{Status: resp.StatusCode, Code: "bad_answer"})
	}
	for i, r := range answer.Results {
		switch {
		case r.Error != nil:
			errs[i] = &postError{Status: resp.StatusCode, Code: r.Error.Code}
		case r.ID == "":
			errs[i] = &postError{Status: resp.StatusCode, Code: "bad_answer"}
		}
	}
	return errs
}
