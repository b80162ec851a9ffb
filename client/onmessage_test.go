package client

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
)

// gotMsg is a [RawMsg] copied out of an OnMessage call.
type gotMsg struct {
	ch         string
	seq, prev  uint64
	data, raw  string
	hasData    bool
	decodedErr error
	decoded    Message
}

// collect returns an OnMessage that copies every message to the channel
// it returns.
func collect() (func(RawMsg), chan gotMsg) {
	out := make(chan gotMsg, 100)
	return func(m RawMsg) {
		d, err := m.Message()
		out <- gotMsg{ch: m.Ch, seq: m.Seq, prev: m.Prev, data: string(m.Data), raw: string(m.Raw),
			hasData: m.Data != nil, decoded: d, decodedErr: err}
	}, out
}

// nextGot returns the next message given to OnMessage, failing after 5 s.
func nextGot(tb testing.TB, got <-chan gotMsg) gotMsg {
	tb.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		tb.Fatal("no message within 5s")
		return gotMsg{}
	}
}

// TestOnMessage: with OnMessage set, every "msg" op goes to it, whether
// the fast reader or encoding/json reads it, everything else to Events in
// order, and replies still reach their requests.
func TestOnMessage(t *testing.T) {
	t.Parallel()
	for _, v2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v2=%v", v2), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			fs := newFakeServer(t, false)
			url := fs.URL
			if v2 {
				url = fs.URL2
			}
			onMessage, got := collect()
			c := dialURL(t, url, Options{Token: "t:alice", OnMessage: onMessage})
			s := fs.session(t)
			if err := c.Join(ctx, "guild.1"); err != nil {
				t.Fatal(err)
			}
			ops := []string{
				`{"op":"msg","ch":"guild.1","id":"a","seq":10,"prev":9,"from":"bob","name":"Bob","text":"hi","data":{"p":1,"s":"x\"}"},"ts":5}`,
				`{"op":"presence","ch":"guild.1","user":"bob","name":"Bob","event":"join"}`,
				// Left to encoding/json: an escaped channel, a member that
				// folds to a known name.
				`{"op":"msg","ch":"guild.\u0032","id":"b","seq":11,"prev":10,"text":"","ts":6}`,
				`{"op":"msg","CH":"guild.3","id":"c","text":"t","data":[1],"ts":7,"extra":{"a":[null]}}`,
				// Read in place: spaces, members in any order, no data.
				`{ "ts" : 8 , "system" : true , "text" : "Raid" , "ch" : "guild.1" , "op" : "msg" }`,
				// Decodes to no message: Events, Raw only.
				`{"op":"msg","ch":"guild.1","seq":"x"}`,
				`{"op":"deleted","ch":"guild.1","id":"a"}`,
			}
			for _, op := range ops {
				s.sendRaw([]byte(op))
			}
			if _, err := c.Say(ctx, "guild.1", "mine", nil); err != nil {
				t.Fatalf("Say with OnMessage set: %v", err)
			}

			want := []gotMsg{
				{ch: "guild.1", seq: 10, prev: 9, data: `{"p":1,"s":"x\"}"}`, hasData: true, raw: ops[0]},
				{ch: "guild.2", seq: 11, prev: 10, raw: ops[2]},
				{ch: "guild.3", data: `[1]`, hasData: true, raw: ops[3]},
				{ch: "guild.1", raw: ops[4]},
			}
			for i, w := range want {
				m := nextGot(t, got)
				if m.ch != w.ch || m.seq != w.seq || m.prev != w.prev || m.data != w.data || m.hasData != w.hasData || m.raw != w.raw {
					t.Errorf("message %d = %+v\nwant %+v", i, m, w)
				}
				if m.decodedErr != nil || m.decoded.Ch != w.ch || m.decoded.Seq != w.seq || string(m.decoded.Data) != w.data {
					t.Errorf("message %d: Message() = %+v, %v", i, m.decoded, m.decodedErr)
				}
			}
			if m := nextGot(t, got); m.decoded.Text != "mine" || m.decoded.From != "alice" {
				t.Errorf("own message = %+v", m.decoded)
			}
			var events []string
			for range 3 {
				ev := nextEvent(t, c)
				if ev.Msg != nil {
					t.Errorf("a message reached Events: %+v", ev.Msg)
				}
				events = append(events, ev.Op+" "+string(ev.Raw))
			}
			wantEvents := []string{"presence " + ops[1], "msg " + ops[5], "deleted " + ops[6]}
			if !slices.Equal(events, wantEvents) {
				t.Errorf("events = %q\nwant %q", events, wantEvents)
			}
			// The highest seq per channel, whichever reader read it ("mine"
			// has the fake's own seq, which may be higher than 10).
			if seqs := c.LastSeqs(); seqs["guild.1"] < 10 || seqs["guild.2"] != 11 {
				t.Errorf("LastSeqs() = %v", seqs)
			}
		})
	}
}

// TestOnMessageResume: the messages a v2 resume replays with "ready" go to
// OnMessage (before Dial returns), "resumed" to Events, and LastSeqs
// counts them.
func TestOnMessageResume(t *testing.T) {
	t.Parallel()
	fs := newFakeServer(t, false)
	_, resume, missed := missWhileAway(t, fs)
	onMessage, got := collect()
	again := dialURL(t, fs.URL2, Options{Token: "t:alice", Resume: resume, OnMessage: onMessage})
	for _, seq := range missed {
		if m := nextGot(t, got); m.seq != seq || m.ch != "guild.1" {
			t.Fatalf("replayed %+v, want seq %d", m, seq)
		}
	}
	if ev := nextEvent(t, again); ev.Op != "resumed" || ev.Ch != "guild.1" || !ev.Recovered {
		t.Fatalf("after the replay got %+v, want resumed guild.1 recovered", ev)
	}
	want := maps.Clone(resume)
	want["guild.1"] = missed[2]
	if got := again.LastSeqs(); !maps.Equal(got, want) {
		t.Errorf("LastSeqs() = %v, want %v", got, want)
	}
}

// TestEventsKeepTheirBytes: the reader reuses its frame buffers, so the
// Raw of events and replies read long after their frames must be copies.
func TestEventsKeepTheirBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		v2        bool
		onMessage bool
	}{{"v1", false, false}, {"v2", true, false}, {"v1/OnMessage", false, true}, {"v2/OnMessage", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t, false)
			url := fs.URL
			if tc.v2 {
				url = fs.URL2
			}
			var opts Options
			opts.Token, opts.EventBuffer = "t:alice", 500
			var msgs int
			if tc.onMessage {
				opts.OnMessage = func(RawMsg) { msgs++ }
			}
			c := dialURL(t, url, opts)
			s := fs.session(t)
			var want []string
			for i := range 200 {
				op := fmt.Sprintf(`{"op":"presence","ch":"c","user":"u%d","name":"%s","event":"join"}`, i, bytes.Repeat([]byte{'a' + byte(i%26)}, i))
				want = append(want, op)
				if i%3 == 0 {
					s.sendBatch([]byte(op), fmt.Appendf(nil, `{"op":"msg","ch":"c","id":"m%d","text":"","ts":1}`, i))
					continue
				}
				s.sendRaw([]byte(op))
			}
			var got []string
			for len(got) < len(want) {
				ev := nextEvent(t, c)
				if ev.Op != "msg" {
					got = append(got, string(ev.Raw))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("events changed after they were read:\n%q\nwant\n%q", got, want)
			}
			if tc.onMessage && msgs != 67 {
				t.Errorf("OnMessage had %d messages, want 67", msgs)
			}
		})
	}
}
