package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa/client"
)

// dialUA connects a client with token to a UA; it is closed when the test
// ends.
func dialUA(t testing.TB, url, token string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Token: token})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
