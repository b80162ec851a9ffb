package testenv

import (
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
)

// NextEvent returns the next event of c with the given op, skipping
// others; it fails the test when the connection ends or 10 s pass first.
func NextEvent(t testing.TB, c *client.Conn, op string) client.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection ended waiting for %q: %v", op, c.Err())
			}
			if ev.Op == op {
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q", op)
		}
	}
}

// WantCode fails the test unless err carries code.
func WantCode(t testing.TB, err error, code kaiwa.Code) {
	t.Helper()
	if kaiwa.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}
