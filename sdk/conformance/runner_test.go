package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
	Label, Msg, Emoji, User, Q, ReplyTo         string
	SameAs                                      *int
	Count, Limit, MS, MinMS, MaxMS, TTL         int
	Texts                                       []string
	Attachments                                 []kaiwa.Attachment
	Messages                                    []map[string]any
}

// sent is a message a say step labelled: its id and seq (0 in v1).
type sent struct {
	id  string
	seq uint64
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
	str("label", &st.Label)
	str("msg", &st.Msg)
	str("emoji", &st.Emoji)
	str("user", &st.User)
	str("q", &st.Q)
	str("reply_to", &st.ReplyTo)
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
	if v, ok := st.raw["attachments"]; ok {
		_ = json.Unmarshal(v, &st.Attachments)
	}
	if v, ok := st.raw["messages"]; ok && st.kind == "history" {
		_ = json.Unmarshal(v, &st.Messages)
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
	labels := map[string]sent{}
	for i, raw := range sc.Steps {
		st, err := parseStep(raw)
		if err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = playStep(sctx, ctl, users, version, clients, sayIDs, labels, i, st)
		cancel()
		if err != nil {
			return fmt.Errorf("step %d %s: %w", i, raw, err)
		}
	}
	return nil
}

func playStep(ctx context.Context, ctl control, users setupUsers, version string, clients map[string]*goClient, sayIDs map[int]string, labels map[string]sent, i int, st step) error {
	c := clients[st.client]
	need := func() error {
		if c == nil {
			return fmt.Errorf("no client %q", st.client)
		}
		return nil
	}
	// msg is the message the step's "msg" names.
	msg := func() (sent, error) {
		m, ok := labels[st.Msg]
		if !ok {
			return m, fmt.Errorf("no message labelled %q", st.Msg)
		}
		return m, nil
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
		o := client.SayOptions{CID: st.CID, Attachments: st.Attachments}
		if st.ReplyTo != "" {
			o.ReplyTo = labels[st.ReplyTo].id
		}
		id, seq, err := c.sess.SayWith(ctx, st.Ch, st.Text, nil, o)
		if err != nil || st.Fails != "" {
			return wantFail(err)
		}
		sayIDs[i] = id
		if st.Label != "" {
			labels[st.Label] = sent{id, seq}
		}
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
		if st.Texts != nil && !slices.Equal(texts, st.Texts) {
			return fmt.Errorf("history %q, want %q", texts, st.Texts)
		}
		if st.Messages != nil {
			if len(msgs) != len(st.Messages) {
				return fmt.Errorf("history %q, want %d messages", texts, len(st.Messages))
			}
			for n := range msgs {
				if err := matchMessage(&msgs[n], st.Messages[n], labels); err != nil {
					return fmt.Errorf("history[%d]: %w", n, err)
				}
			}
		}
		return nil
	case "edit", "delete", "react", "unreact", "read":
		if err := need(); err != nil {
			return err
		}
		m, err := msg()
		if err != nil {
			return err
		}
		switch st.kind {
		case "edit":
			_, err = c.sess.Edit(ctx, st.Ch, m.id, st.Text)
		case "delete":
			err = c.sess.Delete(ctx, st.Ch, m.id)
		case "react":
			err = c.sess.React(ctx, st.Ch, m.id, st.Emoji)
		case "unreact":
			err = c.sess.Unreact(ctx, st.Ch, m.id, st.Emoji)
		case "read":
			_, err = c.sess.Read(ctx, st.Ch, m.seq)
		}
		return wantFail(err)
	case "unread":
		if err := need(); err != nil {
			return err
		}
		got := -1
		err := poll(ctx, func() (bool, error) {
			counts, err := c.sess.Unread(ctx, st.Ch)
			got = counts[st.Ch].Count
			return got == st.Count, err
		})
		if err != nil {
			return fmt.Errorf("unread count of %s is %d, want %d: %w", st.Ch, got, st.Count, err)
		}
		return nil
	case "block", "unblock":
		if err := need(); err != nil {
			return err
		}
		if st.kind == "block" {
			return wantFail(c.sess.Block(ctx, st.User))
		}
		return wantFail(c.sess.Unblock(ctx, st.User))
	case "typing":
		if err := need(); err != nil {
			return err
		}
		return wantFail(c.sess.Typing(ctx, st.Ch))
	case "search":
		if err := need(); err != nil {
			return err
		}
		if st.Fails != "" {
			_, _, err := c.sess.Search(ctx, st.Q, st.Ch, st.Limit, "")
			return wantFail(err)
		}
		var texts []string
		err := poll(ctx, func() (bool, error) {
			msgs, _, err := c.sess.Search(ctx, st.Q, st.Ch, st.Limit, "")
			texts = texts[:0]
			for _, m := range msgs {
				texts = append(texts, m.Text)
			}
			return slices.Equal(texts, st.Texts), err
		})
		if err != nil {
			return fmt.Errorf("search %q found %q, want %q: %w", st.Q, texts, st.Texts, err)
		}
		return nil
	case "expect":
		if err := need(); err != nil {
			return err
		}
		return expect(ctx, c, st, labels)
	case "quiet":
		if err := need(); err != nil {
			return err
		}
		if err := c.sess.Ping(ctx); err != nil {
			return err
		}
		for _, op := range []string{"msg", "edited", "deleted", "reaction"} {
			if evs := c.pending(op); len(evs) > 0 {
				return fmt.Errorf("%d %s events not expected, the first %s", len(evs), op, evs[0].Raw)
			}
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

// poll calls f every 100 ms until it is done or fails, or ctx ends: for
// what follows the message log by a moment (unread counts, search).
func poll(ctx context.Context, f func() (done bool, err error)) error {
	for {
		if done, err := f(); done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// expect plays an expect step.
func expect(ctx context.Context, c *goClient, st step, labels map[string]sent) error {
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
		return matchMessage(ev.Msg, msg, labels)
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
	case st.raw["edited"] != nil, st.raw["deleted"] != nil, st.raw["reaction"] != nil:
		return expectChange(ctx, c, st, labels)
	case st.raw["read"] != nil:
		var want struct{ Ch, Msg string }
		_ = json.Unmarshal(st.raw["read"], &want)
		seq := labels[want.Msg].seq
		_, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "read" && ev.Ch == want.Ch && ev.Seq == seq })
		if err != nil {
			return fmt.Errorf("no read of %s up to %d: %w", want.Ch, seq, err)
		}
		return nil
	case st.raw["typing"] != nil:
		var want struct{ Ch, User string }
		_ = json.Unmarshal(st.raw["typing"], &want)
		ev, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == "typing" && ev.Ch == want.Ch })
		if err != nil {
			return fmt.Errorf("no typing in %s: %w", want.Ch, err)
		}
		if ev.Presence.User != want.User {
			return fmt.Errorf("typing by %s, want %s", ev.Presence.User, want.User)
		}
		return nil
	case st.raw["unread"] != nil:
		var want struct {
			Ch    string
			Count int
		}
		_ = json.Unmarshal(st.raw["unread"], &want)
		got, ok := c.sess.Ready().Unread[want.Ch]
		if !ok || got.Count != want.Count {
			return fmt.Errorf("the latest ready's unread count of %s is %+v (given %v), want %d; ready %+v", want.Ch, got, ok, want.Count, c.sess.Ready())
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

// expectChange plays an expect step of an edited, deleted or reaction
// event: the first of its kind about the message named.
func expectChange(ctx context.Context, c *goClient, st step, labels map[string]sent) error {
	var (
		op   string
		want struct {
			Ch, Msg, Text, User, Emoji string
			Added                      *bool
			Counts                     map[string]int
		}
	)
	for _, k := range []string{"edited", "deleted", "reaction"} {
		if st.raw[k] != nil {
			op = k
			_ = json.Unmarshal(st.raw[k], &want)
		}
	}
	id := labels[want.Msg].id
	ev, err := c.take(ctx, func(ev client.Event) bool { return ev.Op == op && ev.Ch == want.Ch && ev.ID == id })
	if err != nil {
		return fmt.Errorf("no %s event about %s (%s): %w", op, want.Msg, id, err)
	}
	switch op {
	case "edited":
		if ev.Change.Text != want.Text || ev.Change.EditedAt == 0 {
			return fmt.Errorf("edited %+v, want the text %q", *ev.Change, want.Text)
		}
	case "reaction":
		ch := ev.Change
		if ch.User != want.User || ch.Emoji != want.Emoji || want.Added != nil && ch.Added != *want.Added || !sameCounts(ch.Reactions, want.Counts) {
			return fmt.Errorf("reaction %+v, want %s", *ch, st.raw["reaction"])
		}
	}
	return nil
}

// sameCounts reports whether reactions are exactly the counts of want.
func sameCounts(reactions []kaiwa.Reaction, want map[string]int) bool {
	got := map[string]int{}
	for _, r := range reactions {
		got[r.Emoji] = r.Count
	}
	return maps.Equal(got, want)
}

// matchMessage checks the fields a scenario names: ch, text, from and
// system; reply_to (a label), quote ({from, text}), attachments (their
// URLs), reactions ({emoji: count}) and edited (whether it was).
func matchMessage(m *client.Message, want map[string]any, labels map[string]sent) error {
	got := map[string]any{"ch": m.Ch, "text": m.Text, "from": m.From, "system": m.System, "edited": m.EditedAt != 0}
	for k, w := range want {
		switch k {
		case "reply_to":
			label, _ := w.(string)
			if m.ReplyTo != labels[label].id {
				return fmt.Errorf("message reply_to = %q, want %q (%s's)", m.ReplyTo, labels[label].id, label)
			}
			continue
		case "quote":
			q, _ := w.(map[string]any)
			if m.Quote == nil || m.Quote.From != fmt.Sprint(q["from"]) || m.Quote.Text != fmt.Sprint(q["text"]) {
				return fmt.Errorf("message quote = %+v, want %v", m.Quote, q)
			}
			continue
		case "attachments":
			var urls []any
			for _, a := range m.Attachments {
				urls = append(urls, a.URL)
			}
			if fmt.Sprint(urls) != fmt.Sprint(w) {
				return fmt.Errorf("message attachments %+v, want the URLs %v", m.Attachments, w)
			}
			continue
		case "reactions":
			counts := map[string]int{}
			wm, _ := w.(map[string]any)
			for e, n := range wm {
				f, _ := n.(float64)
				counts[e] = int(f)
			}
			if !sameCounts(m.Reactions, counts) {
				return fmt.Errorf("message reactions %+v, want %v", m.Reactions, w)
			}
			continue
		}
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			return fmt.Errorf("message %s = %v, want %v (message %+v)", k, got[k], w, *m)
		}
	}
	return nil
}
