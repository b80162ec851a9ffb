package ua_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// BenchmarkDMAgainstSay is one message between two players on one v2 UA,
// from the sender's frame to the recipient's delivery: in a channel the two
// have joined ("say"), and as a direct message ("dm"). Besides the time per
// message it reports this process's CPU per message (cpu-µs/op: the UA and
// both clients; NATS and MySQL run apart), so that a run shows what a
// direct message costs against a channel message.
func BenchmarkDMAgainstSay(b *testing.B) {
	s := teststack.New(b)
	ctx := context.Background()
	s.Channel("duo", kaiwa.ChannelOpen)
	if err := s.Store.SetTenantSettings(ctx, s.Tenant, kaiwa.Settings{RateOps: 100000, RateBurst: 100000}); err != nil {
		b.Fatal(err)
	}
	url, _ := s.UA("v2", nil)
	dial := func(user string) *client.Conn {
		c, err := client.Dial(ctx, url, client.Options{Token: s.Token(user, []string{"*"}, []string{"*"})})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if err := c.Join(ctx, "duo"); err != nil {
			b.Fatal(err)
		}
		return c
	}
	alice, bob := dial("alice"), dial("bob")
	go func() { // alice's own copies are not measured
		for range alice.Events() {
		}
	}()
	received := func(b *testing.B) {
		for {
			select {
			case ev, ok := <-bob.Events():
				if !ok {
					b.Fatal("bob's connection closed")
				}
				if ev.Op == "msg" {
					return
				}
			case <-time.After(5 * time.Second):
				b.Fatal("bob received nothing in 5 s")
			}
		}
	}
	run := func(b *testing.B, send func() error) {
		start := cpuTime()
		for b.Loop() {
			if err := send(); err != nil {
				b.Fatal(err)
			}
			received(b)
		}
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("say", func(b *testing.B) {
		run(b, func() error { _, err := alice.Say(ctx, "duo", "gg", nil); return err })
	})
	b.Run("dm", func(b *testing.B) {
		run(b, func() error { _, _, err := alice.DM(ctx, "bob", "gg", nil); return err })
	})
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
