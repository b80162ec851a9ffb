package testenv

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer accepts connections and echoes every line back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a line on c and returns the line read back.
func roundTrip(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func TestProxyCutAndRestore(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, echoServer(t))

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello" {
		t.Fatalf("through the proxy: got %q, %v", got, err)
	}

	p.Cut()
	if _, err := roundTrip(c, "after cut"); err == nil {
		t.Fatal("a connection held across Cut still works")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_, err = roundTrip(c2, "while cut")
		c2.Close()
	}
	if err == nil {
		t.Fatal("a new connection works while cut")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a connection while cut hangs instead of closing: %v", err)
	}

	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "back"); err != nil || got != "back" {
		t.Fatalf("after Restore: got %q, %v", got, err)
	}
}

func TestDSNVia(t *testing.T) {
	t.Parallel()
	got := DSNVia("kaiwa:pw@unix(/run/mysqld.sock)/db?parseTime=true", "127.0.0.1:4000")
	want := "kaiwa:pw@tcp(127.0.0.1:4000)/db?parseTime=true"
	if got != want {
		t.Fatalf("DSNVia = %q, want %q", got, want)
	}
	if got := WithDB("root@tcp(127.0.0.1:3306)/", "kaiwa"); got != "root@tcp(127.0.0.1:3306)/kaiwa" {
		t.Fatalf("WithDB = %q", got)
	}
}
