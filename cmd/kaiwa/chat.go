package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/client"
)

// chatOpTimeout bounds each request of the chat command.
const chatOpTimeout = 10 * time.Second

const chatHelp = `commands:
  /join CH         join channel CH and talk there
  /leave [CH]      leave CH (default: the current channel)
  /ch CH           talk in channel CH
  /dm USER TEXT    send a direct message to USER
  /history [N]     show the last N messages of the current channel (default 20)
  /quit            leave the chat
  /help            show this help
  any other line is said to the current channel ("//" sends a line starting with "/")
`

// runChat is the "kaiwa chat" command: an interactive chat client for one
// user token. It reads commands and lines from stdin and prints what the
// server sends to stdout, until stdin ends, /quit, or ctx is cancelled
// (all clean exits). It returns an error when it cannot connect or when
// the server closes the session.
func runChat(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defURL := getenv("KAIWA_WS_URL")
	if defURL == "" {
		defURL = "wss://127.0.0.1:8443/v1/ws"
	}
	wsURL := fs.String("url", defURL, "WebSocket `URL` of a Kaiwa UA (env KAIWA_WS_URL)")
	// The default stays empty so that usage never prints the token.
	token := fs.String("token", "", "user `token` from the game server (env KAIWA_TOKEN)")
	insecure := fs.Bool("insecure", false, "skip TLS certificate verification (self-signed local certificate)")
	join := fs.String("join", "", "comma-separated `channels` to join")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kaiwa chat [flags]\n\n%s\nflags:\n", chatHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("chat: unexpected argument %q", fs.Arg(0))
	}
	tok := *token
	if tok == "" {
		tok = getenv("KAIWA_TOKEN")
	}
	if tok == "" {
		return errors.New("chat: a user token is required (--token or KAIWA_TOKEN)")
	}
	opts := client.Options{Token: tok}
	if *insecure {
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	c, err := client.Dial(dctx, *wsURL, opts)
	cancel()
	if err != nil {
		if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok && !*insecure {
			return fmt.Errorf("chat: connect to %s: %w (a local stack's certificate is self-signed: add --insecure)", *wsURL, err)
		}
		return fmt.Errorf("chat: connect to %s: %w", *wsURL, err)
	}
	defer c.Close()

	s := &chatSession{c: c, out: stdout}
	s.start(ctx, splitList(*join))

	lines := make(chan string)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 4096), 64<<10)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
	}()

	events := c.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if quit := s.command(ctx, line); quit {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				s.printf("! disconnected: %v\n", c.Err())
				return fmt.Errorf("chat: %w", c.Err())
			}
			s.event(ev)
		}
	}
}

// chatSession is the state of one chat: the connection and the current
// channel. Only runChat's loop goroutine uses it.
type chatSession struct {
	c   *client.Conn
	out io.Writer
	cur string
}

func (s *chatSession) printf(format string, args ...any) {
	fmt.Fprintf(s.out, format, args...)
}

// start greets the user and joins the channels asked for.
func (s *chatSession) start(ctx context.Context, join []string) {
	r := s.c.Ready()
	s.printf("* connected as %s (%s), protocol %s\n", clean(r.Name), r.User, r.Version)
	if r.Deprecated != nil {
		s.printf("! protocol %s is deprecated; it is retired at %s\n", r.Version, clean(r.Deprecated.Sunset))
	}
	if len(r.Channels) > 0 {
		s.printf("* in %s\n", strings.Join(r.Channels, ", "))
		s.cur = r.Channels[0]
	}
	for _, ch := range join {
		s.join(ctx, ch)
	}
	if s.cur != "" {
		s.printf("* talking in %s (/help for commands)\n", s.cur)
	} else {
		s.printf("* /join a channel to talk (/help for commands)\n")
	}
}

// command runs one input line; it reports whether the user quit.
func (s *chatSession) command(ctx context.Context, line string) (quit bool) {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" {
		return false
	}
	if strings.HasPrefix(line, "//") {
		s.say(ctx, line[1:])
		return false
	}
	if !strings.HasPrefix(line, "/") {
		s.say(ctx, line)
		return false
	}
	name, rest, _ := strings.Cut(line[1:], " ")
	rest = strings.TrimSpace(rest)
	ctx, cancel := context.WithTimeout(ctx, chatOpTimeout)
	defer cancel()
	switch name {
	case "quit", "q":
		return true
	case "help", "h", "?":
		s.printf("%s", chatHelp)
	case "join", "j":
		if rest == "" {
			s.printf("! usage: /join CH\n")
			return false
		}
		if s.join(ctx, rest) {
			s.printf("* talking in %s\n", s.cur)
		}
	case "leave":
		ch := rest
		if ch == "" {
			ch = s.cur
		}
		if ch == "" {
			s.printf("! usage: /leave CH\n")
			return false
		}
		if err := s.c.Leave(ctx, ch); err != nil {
			s.printErr(err)
			return false
		}
		s.printf("* left %s\n", ch)
		if ch == s.cur {
			s.cur = ""
		}
	case "ch":
		if rest == "" {
			s.printf("! usage: /ch CH\n")
			return false
		}
		s.cur = rest
		s.printf("* talking in %s\n", s.cur)
	case "dm":
		to, text, _ := strings.Cut(rest, " ")
		if to == "" || strings.TrimSpace(text) == "" {
			s.printf("! usage: /dm USER TEXT\n")
			return false
		}
		if _, _, err := s.c.DM(ctx, to, text, nil); err != nil {
			s.printErr(err)
		}
	case "history":
		n := 20
		if rest != "" {
			v, err := strconv.Atoi(rest)
			if err != nil || v < 1 {
				s.printf("! usage: /history [N]\n")
				return false
			}
			n = v
		}
		if s.cur == "" {
			s.printf("! no current channel: /join or /ch one first\n")
			return false
		}
		msgs, err := s.c.History(ctx, s.cur, n, "")
		if err != nil {
			s.printErr(err)
			return false
		}
		s.printf("* last %d messages of %s\n", len(msgs), s.cur)
		for i := range msgs {
			s.message(&msgs[i])
		}
	default:
		s.printf("! unknown command /%s (/help lists them)\n", clean(name))
	}
	return false
}

// join joins ch and makes it the current channel; it reports success.
func (s *chatSession) join(ctx context.Context, ch string) bool {
	ctx, cancel := context.WithTimeout(ctx, chatOpTimeout)
	defer cancel()
	if err := s.c.Join(ctx, ch); err != nil {
		s.printErr(err)
		return false
	}
	s.printf("* joined %s\n", ch)
	s.cur = ch
	return true
}

// say sends text to the current channel. The server echoes the message
// back, and that is when it is printed.
func (s *chatSession) say(ctx context.Context, text string) {
	if s.cur == "" {
		s.printf("! no current channel: /join or /ch one first\n")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, chatOpTimeout)
	defer cancel()
	if _, err := s.c.Say(ctx, s.cur, text, nil); err != nil {
		s.printErr(err)
	}
}

// event prints one server push.
func (s *chatSession) event(ev client.Event) {
	switch ev.Op {
	case "msg":
		s.message(ev.Msg)
	case "presence":
		verb := "joined"
		if ev.Presence.Event == "leave" {
			verb = "left"
		}
		s.printf("* %s %s %s\n", displayName(ev.Presence.Name, ev.Presence.User), verb, ev.Presence.Ch)
	case "joined":
		s.printf("* you were added to %s\n", ev.Ch)
	case "left":
		s.printf("* you were removed from %s (%s)\n", ev.Ch, clean(ev.Reason))
		if ev.Ch == s.cur {
			s.cur = ""
		}
	case "deleted":
		s.printf("* message %s in %s was deleted\n", clean(ev.ID), ev.Ch)
	case "closing":
		after := ""
		if ev.Closing.ReconnectAfterMS > 0 {
			after = fmt.Sprintf(", reconnect after %d ms", ev.Closing.ReconnectAfterMS)
		}
		s.printf("! closing: %d %s%s\n", ev.Closing.Code, clean(ev.Closing.Reason), after)
	case "error":
		s.printErr(ev.Err)
	}
}

// message prints a chat or system message as "[ch] name: text".
func (s *chatSession) message(m *client.Message) {
	name := displayName(m.Name, m.From)
	if m.System && m.Name == "" {
		name = "system"
	}
	line := "[" + m.Ch + "] " + clean(name) + ": " + clean(m.Text)
	if len(m.Data) > 0 {
		line += " " + clean(string(m.Data))
	}
	s.printf("%s\n", line)
}

// printErr prints an error as "! code: message".
func (s *chatSession) printErr(err error) {
	var ke *kaiwa.Error
	if errors.As(err, &ke) {
		s.printf("! %s: %s\n", ke.Code, clean(ke.Message))
		return
	}
	s.printf("! error: %v\n", err)
}

func displayName(name, user string) string {
	if name != "" {
		return name
	}
	return user
}

// clean makes text from other users safe to print on a terminal: control
// characters (escape sequences, newlines) become U+FFFD.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
