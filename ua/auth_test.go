package ua_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// TestV2OpsAfterAuthInOneEnvelopeRunInOrder: the ops that follow auth in
// the first envelope run, in order, once the session is ready.
func TestV2OpsAfterAuthInOneEnvelopeRunInOrder(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.channel("world", kaiwa.ChannelOpen)
	v2, _ := versions.Default().Get("v2")
	url, _ := s.startUAWith(s.connect("ua"), v2, nil)
	ctx := ctx5(t)
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	tok := s.token("alice", []string{"*"}, []string{"*"})
	if err := wsjson(ctx, c, `{"t":1,"ops":[{"op":"auth","token":"`+tok+`"},{"op":"join","ref":"j","ch":"world"},{"op":"say","ref":"s","ch":"world","text":"hi"}]}`); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for all := ""; !strings.Contains(all, `"op":"msg"`) || !strings.Contains(all, `"ref":"s"`); all = strings.Join(seen, "") {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read after %q: %v", seen, err)
		}
		seen = append(seen, string(data))
	}
	all := strings.Join(seen, "\n")
	// The say's ok and its live copy may come in either order.
	order := []string{`"op":"ready"`, `"ref":"j"`, `"text":"hi"`}
	at := 0
	for _, want := range order {
		i := strings.Index(all[at:], want)
		if i < 0 {
			t.Fatalf("frames lack %s after what came before, in order %q:\n%s", want, order, all)
		}
		at += i
	}
	if strings.Contains(all, `"op":"error"`) {
		t.Errorf("an error among the replies:\n%s", all)
	}
}
