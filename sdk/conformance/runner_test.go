package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
)

// This file is the Go client's runner: it plays the scenarios of
// scenarios.json with client.Session against the control server, as the
// TypeScript and C# runners do with their SDKs.

// file is scenarios.json.
type file struct {
	Scenarios []scenario `json:"scenarios"`
}

type scenario struct {
	Name     string            `json:"name"`
	Versions []string          `json:"versions"`
	Setup    json.RawMessage   `json:"setup"`
	Steps    []json.RawMessage `json:"steps"`
}

// setupUsers reads setup.users: the permissions of each user's tokens.
type setupUsers struct {
	Users map[string]struct {
		Join    []string `json:"join"`
		Publish []string `json:"publish"`
	} `json:"users"`
}

// step is one step of a scenario, every field any step may carry.
type step struct {
	kind, client string // the first key and its value
	raw          map[string]json.RawMessage

	As, Token, Fails, Ch, Text, CID, To, Prefix string
	SameAs                                      *int
	Count, Limit, MS, MinMS, MaxMS, TTL         int
	Texts                                       []string
}

func parseStep(raw json.RawMessage) (step, error) {
	var st step
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return st, err
	}
	key, err := dec.Token()
	if err != nil {
		return st, err
	}
	st.kind, _ = key.(string)
	if err := json.Unmarshal(raw, &st.raw); err != nil {
		return st, err
	}
	var first any
	_ = json.Unmarshal(st.raw[st.kind], &first)
	if s, ok := first.(string); ok {
		st.client = s
	}
	str := func(k string, dst *string) {
		if v, ok := st.raw[k]; ok {
			_ = json.Unmarshal(v, dst)
		}
	}
	num := func(k string, dst *int) {
		if v, ok := st.raw[k]; ok {
			_ = json.Unmarshal(v, dst)
		}
	}
	str("as", &st.As)
	str("token", &st.Token)
	str("fails", &st.Fails)
	str("ch", &st.Ch)
	str("text", &st.Text)
	str("cid", &st.CID)
	str("to", &st.To)
	str("prefix", &st.Prefix)
	num("count", &st.Count)
	num("limit", &st.Limit)
	num("ms", &st.MS)
	num("min_ms", &st.MinMS)
	num("max_ms", &st.MaxMS)
	num("ttl_seconds", &st.TTL)
	if v, ok := st.raw["same_as"]; ok {
		st.SameAs = new(int)
		_ = json.Unmarshal(v, st.SameAs)
	}
	if v, ok := st.raw["texts"]; ok {
		_ = json.Unmarshal(v, &st.Texts)
	}
	return st, nil
}

// control calls the control server.
type control struct {
	base string
	hc   *http.Client
}

func (c control) call(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control %s: %s %s", path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// goClient is one client of a scenario: a session and the events it has
// received and not yet consumed.
type goClient struct {
	sess  *client.Session
	proxy string

	mu     sync.Mutex
	events []client.Event
	more   chan struct{} // signalled when an event arrives
}

func (c *goClient) read() {
	for ev := range c.sess.Events() {
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
	}
}

// take waits for the first unconsumed event that match accepts, removes
// it and returns it. Events it skips stay.
func (c *goClient) take(ctx context.Context, match func(client.Event) bool) (client.Event, error) {
	for {
		c.mu.Lock()
		for i, ev := range c.events {
			if match(ev) {
				c.events = slices.Delete(c.events, i, i+1)
				c.mu.Unlock()
				return ev, nil
			}
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-ctx.Done():
			return client.Event{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pending returns the unconsumed events of op.
func (c *goClient) pending(op string) []client.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []client.Event
	for _, ev := range c.events {
		if ev.Op == op {
			out = append(out, ev)
		}
	}
	return out
}

// play plays one scenario for one version.
func play(ctx context.Context, ctl control, sc scenario, version string) (err error) {
	var users setupUsers
	_ = json.Unmarshal(sc.Setup, &users)
	if err := ctl.call(ctx, "/begin", map[string]any{"scenario": sc.Name + " " + version, "setup": sc.Setup}, nil); err != nil {
		return err
	}
	clients := map[string]*goClient{}
	defer func() {
		for _, c := range clients {
			_ = c.sess.Close()
		}
	}()
	sayIDs := map[int]string{}
	for i, raw := range sc.Steps {
		st, err := parseStep(raw)
		if err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = playStep(sctx, ctl, users, version, clients, sayIDs, i, st)
		cancel()
		if err != nil {
			return fmt.Errorf("step %d %s: %w", i, raw, err)
		}
	}
	return nil
}

func playStep(ctx context.Context, ctl control, users setupUsers, version string, clients map[string]*goClient, sayIDs map[int]string, i int, st step) error {
	c := clients[st.client]
	need := func() error {
		if c == nil {
			return fmt.Errorf("no client %q", st.client)
		}
		return nil
	}
	wantFail := func(err error) error {
		if st.Fails == "" {
			return err
		}
		if !kaiwa.IsCode(err, kaiwa.Code(st.Fails)) {
			return fmt.Errorf("got %v, want %s", err, st.Fails)
		}
		return nil
	}
	switch st.kind {
	case "connect":
		u := users.Users[st.As]
		ttl := st.TTL
		if ttl == 0 {
			ttl = 600
		}
		var tok struct {
			Token string `json:"token"`
		}
		req := map[string]any{"user": st.As, "join": u.Join, "publish": u.Publish, "ttl_seconds": ttl}
		switch st.Token {
		case "forged":
			req["forged"] = true
		case "expired":
			req["expired"] = true
		}
		if err := ctl.call(ctx, "/token", req, &tok); err != nil {
			return err
		}
		var where struct {
			URL   string `json:"url"`
			Proxy string `json:"proxy"`
		}
		if err := ctl.call(ctx, "/connect-url", map[string]any{"version": version}, &where); err != nil {
			return err
		}
		sess, err := client.Connect(ctx, where.URL, client.SessionOptions{
			Options:    client.Options{Token: tok.Token, FirstFrameAuth: true},
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		})
		if err != nil {
			return wantFail(err)
		}
		if st.Fails != "" {
			_ = sess.Close()
			return fmt.Errorf("connected, want %s", st.Fails)
		}
		nc := &goClient{sess: sess, proxy: where.Proxy, more: make(chan struct{}, 1)}
		go nc.read()
		clients[st.client] = nc
		return nil
	case "join":
		if err := need(); err != nil {
			return err
		}
		return wantFail(c.sess.Join(ctx, st.Ch))
	case "leave":
		if err := need(); err != nil {
			return err
		}
		return wantFail(c.sess.Leave(ctx, st.Ch))
	case "say":
		if err := need(); err != nil {
			return err
		}
		var id string
		var err error
		if st.CID != "" {
			id, _, err = c.sess.SayCID(ctx, st.Ch, st.Text, nil, st.CID)
		} else {
			id, _, err = c.sess.Say(ctx, st.Ch, st.Text, nil)
		}
		if err != nil || st.Fails != "" {
			return wantFail(err)
		}
		sayIDs[i] = id
		if st.SameAs != nil && sayIDs[*st.SameAs] != id {
			return fmt.Errorf("message id %s, want %s (step %d's)", id, sayIDs[*st.SameAs], *st.SameAs)
		}
		return nil
	case "say-many":
		if err := need(); err != nil {
			return err
		}
		for n := range st.Count {
			if _, _, err := c.sess.Say(ctx, st.Ch, fmt.Sprint(st.Prefix, n), nil); err != nil {
				return err
			}
		}
		return nil
	case "dm":
		if err := need(); err != nil {
			return err
		}
		_, _, _, err := c.sess.DM(ctx, st.To, st.Text, nil)
		return wantFail(err)
	case "history":
		if err := need(); err != nil {
			return err
		}
		msgs, err := c.sess.History(ctx, st.Ch, st.Limit, "")
		if err != nil {
			return err
		}
		var texts []string
		for _, m := range msgs {
			texts = append(texts, m.Text)
		}
		if !slices.Equal(texts, st.Texts) {
			return fmt.Errorf("history %q, want %q", texts, st.Texts)
		}
		return nil
	case "expect":
		if err := need(); err != nil {
			return err
		}
		return expect(ctx, c, st)
	case "quiet":
		if err := need(); err != nil {
			return err
		}
		if err := c.sess.Ping(ctx); err != nil {
			return err
		}
		if msgs := c.pending("msg"); len(msgs) > 0 {
			return fmt.Errorf("%d messages not expected, the first %s", len(msgs), msgs[0].Raw)
		}
		return nil
	case "rtt":
		if err := need(); err != nil {
			return err
		}
		// Up to five pings: one sample may carry a scheduling hiccup.
		var rtt time.Duration
		var ok bool
		for range 5 {
			if err := c.sess.Ping(ctx); err != nil {
				return err
			}
			rtt, ok = c.sess.RTT()
			if ms := rtt.Milliseconds(); ok && ms >= int64(st.MinMS) && ms <= int64(st.MaxMS) {
				return nil
			}
		}
		return fmt.Errorf("RTT %v (known %v) after five pings, want %d–%d ms", rtt, ok, st.MinMS, st.MaxMS)
	case "wait-ms":
		var ms int
		_ = json.Unmarshal(st.raw["wait-ms"], &ms)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return nil
	case "cut", "restore":
		if err := need(); err != nil {
			return err
		}
		return ctl.call(ctx, "/proxy/"+st.kind, map[string]any{"proxy": c.proxy}, nil)
	case "delay":
		if err := need(); err != nil {
			return err
		}
		return ctl.call(ctx, "/proxy/delay", map[string]any{"proxy": c.proxy, "ms": st.MS}, nil)
	case "system":
		var ch string
		_ = json.Unmarshal(st.raw["system"], &ch)
		return ctl.call(ctx, "/system", map[string]any{"ch": ch, "text": st.Text}, nil)
	case "system-many":
		var ch string
		_ = json.Unmarshal(st.raw["system-many"], &ch)
		return ctl.call(ctx, "/system-many", map[string]any{"ch": ch, "prefix": st.Prefix, "count": st.Count}, nil)
	case "revoke":
		var user string
		_ = json.Unmarshal(st.raw["revoke"], &user)
		return ctl.call(ctx, "/revoke", map[string]any{"user": user}, nil)
	case "kill-ua", "drain-ua":
		return ctl.call(ctx, "/"+st.kind, map[string]any{"version": version}, nil)
	case "close":
		if err := need(); err != nil {
			return err
		}
		return c.sess.Close()
	}
	return fmt.Errorf("unknown step %q", st.kind)
}

// expect plays an expect step.
func expect(ctx context.Context, c *goClient, st step) error {
	var (
		msg  map[string]any
		msgs struct {
			Ch     string   `json:"ch"`
			Texts  []string `json:"texts"`
			Prefix string   `json:"prefix"`
			Count  int      `json:"count"`
		}
		presence struct{ Ch, User, Event string }
		resumed  struct {
			Ch        string `json:"ch"`
			Recovered bool   `json:"recovered"`
		}
		errWant struct {
			Code string `json:"code"`
		}
		state string
	)
	switch {
	case st.raw["message"] != nil:
		_ = json.Unmarshal(st.raw["message"], &msg)
		ev, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "msg" })
		if err != nil {
			return fmt.Errorf("no message: %w", err)
		}
		return matchMessage(ev.Msg, msg)
	case st.raw["messages"] != nil:
		_ = json.Unmarshal(st.raw["messages"], &msgs)
		want := msgs.Texts
		for n := range msgs.Count {
			want = append(want, fmt.Sprint(msgs.Prefix, n))
		}
		for n, text := range want {
			ev, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "msg" && ev.Msg.Ch == msgs.Ch })
			if err != nil {
				return fmt.Errorf("message %d of %d (%q): %w", n, len(want), text, err)
			}
			if ev.Msg.Text != text {
				return fmt.Errorf("message %d of %d is %q, want %q", n, len(want), ev.Msg.Text, text)
			}
		}
		return nil
	case st.raw["presence"] != nil:
		_ = json.Unmarshal(st.raw["presence"], &presence)
		ev, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "presence" })
		if err != nil {
			return fmt.Errorf("no presence: %w", err)
		}
		if p := ev.Presence; p.Ch != presence.Ch || p.User != presence.User || p.Event != presence.Event {
			return fmt.Errorf("presence %+v, want %+v", *p, presence)
		}
		return nil
	case st.raw["state"] != nil:
		_ = json.Unmarshal(st.raw["state"], &state)
		_, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "state" && string(ev.State) == state })
		if err != nil {
			return fmt.Errorf("no state %s (now %s): %w", state, c.sess.State(), err)
		}
		return nil
	case st.raw["resumed"] != nil:
		_ = json.Unmarshal(st.raw["resumed"], &resumed)
		ev, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "resumed" && ev.Ch == resumed.Ch })
		if err != nil {
			return fmt.Errorf("no resumed: %w", err)
		}
		if ev.Recovered != resumed.Recovered {
			return fmt.Errorf("resumed recovered %v, want %v", ev.Recovered, resumed.Recovered)
		}
		return nil
	case st.raw["error"] != nil:
		_ = json.Unmarshal(st.raw["error"], &errWant)
		_, err := c.take(ctx, func(ev client.Event) bool {
			return ev.Op == "error" && ev.Err != nil && string(ev.Err.Code) == errWant.Code
		})
		if err != nil {
			return fmt.Errorf("no error %s: %w", errWant.Code, err)
		}
		return nil
	}
	return fmt.Errorf("unknown expectation")
}

// matchMessage checks the fields a scenario names.
func matchMessage(m *client.Message, want map[string]any) error {
	got := map[string]any{"ch": m.Ch, "text": m.Text, "from": m.From, "system": m.System}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			return fmt.Errorf("message %s = %v, want %v (message %+v)", k, got[k], w, *m)
		}
	}
	return nil
}
