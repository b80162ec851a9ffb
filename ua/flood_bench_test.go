package ua_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// BenchmarkFloodUntilClosed is the whole life of a connection that floods
// malformed frames: connect, flood, be closed with 4029 (client and server
// in this process). Compare with BenchmarkChatAtRateLimit: a flood costs
// its burst and abuse limit in frames, then nothing.
func BenchmarkFloodUntilClosed(b *testing.B) {
	s := teststack.New(b)
	url, _ := s.UA("v1", nil)
	tok := s.Token("flooder", []string{"*"}, []string{"*"})
	hdr := http.Header{"Authorization": {"Bearer " + tok}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for range 1000 {
				if c.Write(ctx, websocket.MessageText, []byte(`{"op":`)) != nil {
					return
				}
			}
		}()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				if websocket.CloseStatus(err) != 4029 {
					b.Fatalf("closed with %v", err)
				}
				break
			}
		}
		c.CloseNow()
	}
}

// BenchmarkChatAtRateLimit is one second's work of a chat connection at
// the default rate limit: 10 says in a channel of one (each published to
// the stream and delivered back). The tenant's limit is lifted so that
// the benchmark measures the work, not the wait.
func BenchmarkChatAtRateLimit(b *testing.B) {
	s := teststack.New(b)
	s.Channel("world", kaiwa.ChannelOpen)
	if err := s.Store.SetTenantSettings(context.Background(), s.Tenant, kaiwa.Settings{RateOps: 100000, RateBurst: 100000}); err != nil {
		b.Fatal(err)
	}
	url, _ := s.UA("v1", nil)
	tok := s.Token("talker", []string{"*"}, []string{"*"})
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	read := func(want string) {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(string(data), want) {
				return
			}
		}
	}
	read(`"op":"ready"`)
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"op":"join","ch":"world","ref":"j"}`))
	read(`"ref":"j"`)
	b.ReportAllocs()
	for b.Loop() {
		for range 10 {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"op":"say","ch":"world","text":"gg","ref":"s"}`))
			read(`"op":"msg"`)
		}
	}
}
