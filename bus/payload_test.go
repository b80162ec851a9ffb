package bus

import (
	"context"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

// Stream payloads as the stream holds them. Each is a format some release
// wrote, kept byte for byte: every one must decode for as long as a stream
// may hold it.
var storedPayloads = []struct {
	name    string
	payload string
	want    kaiwa.Message // content only: tenant and channel come from the subject
}{{
	// Version 0, before payloads had a version: what the first releases
	// wrote (the members the wire's "msg" op had, after tenant and ch).
	name:    "v0 chat",
	payload: `{"tenant":"acme","ch":"world.en","from":"alice","name":"Alice \"A\"","text":"hi\n\u2028 ü <b>","data":{"k": [1, 2.50], "s":"\u00fc"},"ts":1700000000123,"cid":"c-1"}`,
	want: kaiwa.Message{From: "alice", Name: `Alice "A"`, Text: "hi\n\u2028 ü <b>",
		Data: []byte(`{"k": [1, 2.50], "s":"\u00fc"}`), TS: 1700000000123, CID: "c-1"},
}, {
	name:    "v0 system",
	payload: `{"tenant":"acme","ch":"@bob","text":"you won","ts":1700000000456,"system":true,"cid":"~x"}`,
	want:    kaiwa.Message{Text: "you won", TS: 1700000000456, System: true, CID: "~x"},
}, {
	name:    "v1 chat",
	payload: `{"v":1,"from":"alice","name":"Alice \"A\"","text":"hi\n\u2028 ü <b>","data":{"k": [1, 2.50], "s":"\u00fc"},"ts":1700000000123,"cid":"c-1"}`,
	want: kaiwa.Message{From: "alice", Name: `Alice "A"`, Text: "hi\n\u2028 ü <b>",
		Data: []byte(`{"k": [1, 2.50], "s":"\u00fc"}`), TS: 1700000000123, CID: "c-1"},
}, {
	name:    "v1 system",
	payload: `{"v":1,"text":"you won","ts":1700000000456,"system":true,"cid":"~x"}`,
	want:    kaiwa.Message{Text: "you won", TS: 1700000000456, System: true, CID: "~x"},
}}

func sameContent(a, b kaiwa.Message) bool {
	return a.From == b.From && a.Name == b.Name && a.Text == b.Text && string(a.Data) == string(b.Data) &&
		a.TS == b.TS && a.System == b.System && a.CID == b.CID
}

// TestStoredPayloadsDecode: every format the stream may hold decodes to
// the same message, data byte for byte.
func TestStoredPayloadsDecode(t *testing.T) {
	for _, p := range storedPayloads {
		var m kaiwa.Message
		if err := decodePayload([]byte(p.payload), &m); err != nil {
			t.Errorf("%s: %v", p.name, err)
			continue
		}
		if !sameContent(m, p.want) {
			t.Errorf("%s decoded as %+v (data %s), want %+v (data %s)", p.name, m, m.Data, p.want, p.want.Data)
		}
	}
}

// TestPayloadIsVersion1: the encoder writes version 1 exactly as kept in
// storedPayloads; a change to the format must be a new version, with its
// own entry there.
func TestPayloadIsVersion1(t *testing.T) {
	for _, p := range storedPayloads[2:] {
		m := p.want
		m.Tenant, m.Channel, m.ID, m.Seq, m.Prev = "acme", "world.en", "x-1", 7, 6
		if got := appendPayload(nil, &m); string(got) != p.payload {
			t.Errorf("%s encoded as\n%s\nwant\n%s", p.name, got, p.payload)
		}
	}
}

// TestPayloadOfALaterVersionIsRefused: a release does not guess at a
// format it does not know.
func TestPayloadOfALaterVersionIsRefused(t *testing.T) {
	for _, data := range []string{`{"v":3,"text":"hi","ts":1}`, `{"v":-1,"text":"hi","ts":1}`, `["v",1]`} {
		var m kaiwa.Message
		if err := decodePayload([]byte(data), &m); err == nil {
			t.Errorf("%s decoded as %+v", data, m)
		}
	}
}

// TestStreamOfEarlierFormatsIsRead: messages the stream holds in the
// earlier formats are read by history and delivered live like the ones
// written now, with tenant and channel from their subject.
func TestStreamOfEarlierFormatsIsRead(t *testing.T) {
	url := testenv.NATS(t)
	b, ua := newBus(t, url), newBus(t, url)
	var live collector
	sub, err := ua.SubscribeChannel("acme", "world.en", live.handler())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx := context.Background()
	var want []kaiwa.Message
	for _, p := range storedPayloads {
		if p.want.System {
			continue // an inbox message, on another subject
		}
		if _, err := b.js.Publish(ctx, b.subj.msg("acme", "world.en"), []byte(p.payload)); err != nil {
			t.Fatal(err)
		}
		want = append(want, p.want)
	}
	now := publish(t, b, "acme", "world.en", "written now")
	want = append(want, now)

	got, err := b.History(ctx, "acme", "world.en", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "live deliveries", 5*time.Second, func() bool { return len(live.messages()) == len(want) })
	for name, msgs := range map[string][]kaiwa.Message{"history": got, "live": live.messages()} {
		if len(msgs) != len(want) {
			t.Fatalf("%s: %d messages, want %d", name, len(msgs), len(want))
		}
		for i, m := range msgs {
			if !sameContent(m, want[i]) || m.Tenant != "acme" || m.Channel != "world.en" || m.ID == "" {
				t.Errorf("%s %d: %+v, want %+v", name, i, m, want[i])
			}
		}
	}
}
