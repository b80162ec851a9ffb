package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/apiserver"
	"github.com/kaiwa-chat/kaiwa/client"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
	"github.com/kaiwa-chat/kaiwa/internal/teststack"
)

// runner is a Node script driving gameserver.ts (transpiled): mint,
// verify, or serve the before-send hook (printing its port).
const runner = `import { mintToken, verifyWebhook, beforeSend, postMessages } from "./gameserver.mjs";
import http from "node:http";
const [cmd, ...a] = process.argv.slice(2);
if (cmd === "mint") console.log(mintToken(a[0], a[1], Buffer.from(a[2]), a[3], a[4], a[5], 3600));
if (cmd === "verify") console.log(verifyWebhook(a[0], { "kaiwa-timestamp": a[1], "kaiwa-signature": a[2] }, Buffer.from(a[3])));
if (cmd === "serve") { const s = http.createServer(beforeSend(a[0])); s.listen(0, "127.0.0.1", () => console.log(s.address().port)); }
if (cmd === "post") console.log(JSON.stringify(await postMessages(a[0], a[1], JSON.parse(a[2]))));
`

// typescript transpiles gameserver.ts into dir and returns a function
// running the runner with arguments.
func typescript(t *testing.T) (run func(args ...string) *exec.Cmd) {
	node, sdk := testenv.JSSDK(t, "typescript")
	dir := t.TempDir()
	src, err := filepath.Abs("gameserver.ts")
	if err != nil {
		t.Fatal(err)
	}
	transpile := `const ts = require(process.argv[1] + "/node_modules/typescript");
const fs = require("fs");
const out = ts.transpileModule(fs.readFileSync(process.argv[2], "utf8"), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
fs.writeFileSync(process.argv[3], out.outputText);`
	if out, err := exec.Command(node, "-e", transpile, sdk, src, filepath.Join(dir, "gameserver.mjs")).CombinedOutput(); err != nil {
		t.Fatalf("transpile gameserver.ts: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "runner.mjs"), []byte(runner), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) *exec.Cmd {
		return exec.Command(node, append([]string{filepath.Join(dir, "runner.mjs")}, args...)...)
	}
}

func TestGameServerExamples(t *testing.T) {
	s := teststack.New(t)
	uaURL, _ := s.UA("v1", nil)
	s.Channel("world", kaiwa.ChannelOpen)
	s.Channel("guild.1", kaiwa.ChannelOpen)
	ctx := t.Context()
	secret := []byte("the game's signing secret, 32 bytes or more")
	core := &kaiwa.Core{Tenants: s.Store, Signing: s.Store, Bus: s.API, Events: s.API}
	if _, err := core.AddSigningKey(ctx, kaiwa.ActorAPI, s.Tenant, kaiwa.SigningKey{Kid: "k1", Alg: kaiwa.AlgHS256, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	node := typescript(t)
	dial := func(tok string) *client.Conn {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := client.Dial(dctx, uaURL, client.Options{Token: tok})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Minting: a Go token and a TypeScript token both connect.
	goTok, err := MintToken(string(s.Tenant), "k1", secret, "alice", "Alice", "j-go-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	alice := dial(goTok)
	out, err := node("mint", string(s.Tenant), "k1", string(secret), "bob", "Bob", "j-ts-1").Output()
	if err != nil {
		t.Fatalf("mint in TypeScript: %v", err)
	}
	bob := dial(strings.TrimSpace(string(out)))
	if alice.Ready().User != "alice" || bob.Ready().User != "bob" || bob.Ready().Name != "Bob" {
		t.Fatalf("ready %+v %+v", alice.Ready(), bob.Ready())
	}

	// Verifying a delivery's signature, and refusing a tampered one.
	const hookSecret = "the game's webhook secret"
	body := []byte(`{"id":"msg-1","type":"message"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := kaiwa.SignWebhook(hookSecret, ts, body)
	h := http.Header{"Kaiwa-Timestamp": {ts}, "Kaiwa-Signature": {sig}}
	if !VerifyWebhook(hookSecret, h, body) || VerifyWebhook(hookSecret, h, append(body, ' ')) || VerifyWebhook("other", h, body) {
		t.Error("Go's VerifyWebhook")
	}
	for _, c := range []struct {
		body, want string
	}{{string(body), "true"}, {string(body) + " ", "false"}} {
		out, err := node("verify", hookSecret, ts, sig, c.body).Output()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("TypeScript's verifyWebhook(%q) = %s %v, want %s", c.body, out, err, c.want)
		}
	}

	// The before-send hook, in Go then in TypeScript.
	goHook := httptest.NewServer(BeforeSend(hookSecret))
	defer goHook.Close()
	serve := node("serve", hookSecret)
	stdout, _ := serve.StdoutPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	port := make([]byte, 16)
	n, _ := stdout.Read(port)
	tsHook := "http://127.0.0.1:" + strings.TrimSpace(string(port[:n]))
	for _, c := range []*client.Conn{alice, bob} {
		if err := c.Join(ctx, "guild.1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, url := range []string{goHook.URL, tsHook} {
		st := kaiwa.Settings{BeforeSend: kaiwa.BeforeSend{Hooks: []kaiwa.BeforeSendHook{{Prefix: "guild.", URL: url, Secret: hookSecret}}, OnTimeout: kaiwa.HookFailClosed}}
		if err := s.Store.SetTenantSettings(ctx, s.Tenant, st); err != nil {
			t.Fatal(err)
		}
		if err := s.API.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlSettings, Tenant: s.Tenant}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the hook is called", 2*time.Second, func() bool {
			_, err := alice.Say(ctx, "guild.1", "see https://cheats.example", nil)
			return kaiwa.IsCode(err, kaiwa.CodeRejected) && kaiwa.ErrorMessage(err) == "links_not_allowed"
		})
		if _, err := alice.Say(ctx, "guild.1", "you noob", nil); err != nil {
			t.Fatal(err)
		}
		for {
			m := testenv.NextEvent(t, bob, "msg").Msg
			if m.Text == "[friendly message]" {
				break
			}
			// (Links sent before the UA had the settings went out.)
			if m.Text == "you noob" {
				t.Fatalf("%s let through %q", url, m.Text)
			}
		}
	}
}

// TestPostMessagesExamples: the Go and TypeScript helpers post batches of
// system messages through a real API server: a player in the channel and
// the player whose inbox it is receive them, a post to no channel comes
// back with its error, and a batch posted again (the same cids) posts
// nothing new.
func TestPostMessagesExamples(t *testing.T) {
	s := teststack.New(t)
	uaURL, _ := s.UA("v1", nil)
	s.Channel("world", kaiwa.ChannelOpen)
	ctx := t.Context()
	key, err := s.Store.RotateKey(ctx, s.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	core := &kaiwa.Core{Tenants: s.Store, Tokens: s.Store, Channels: s.Store, Log: s.Store, NG: s.Store,
		Sanctions: s.Store, Signing: s.Store, Webhooks: s.Store, Bus: s.API, Events: s.API, Player: s.Store}
	api := httptest.NewServer(apiserver.NewServer(apiserver.Config{
		Core: core, Tenants: s.Store, Channels: s.Store, Log: s.Store, NG: s.Store, Sanctions: s.Store,
		Events: s.Store, Signing: s.Store, Webhooks: s.Store, Presence: s.API, Version: "v1",
		Logger: slog.New(slog.DiscardHandler),
	}))
	defer api.Close()
	base := api.URL + "/v1/api"
	dial := func(user string) *client.Conn {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := client.Dial(dctx, uaURL, client.Options{Token: s.Token(user, []string{"*"}, []string{"*"})})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := dial("alice"), dial("bob")
	if err := alice.Join(ctx, "world"); err != nil {
		t.Fatal(err)
	}
	node := typescript(t)

	for _, lang := range []string{"go", "ts"} {
		posts := []Post{
			{Ch: "world", Text: lang + ": raid in 5 minutes", CID: lang + "-raid"},
			{User: "bob", Data: map[string]any{"reward": map[string]int{"gold": 100}}, CID: lang + "-reward"},
			{Ch: "nowhere", Text: "lost", CID: lang + "-lost"},
		}
		post := func() []Posted {
			t.Helper()
			if lang == "go" {
				got, err := PostMessages(ctx, base, key, posts)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			raw, _ := json.Marshal(posts)
			out, err := node("post", base, key, string(raw)).Output()
			if err != nil {
				t.Fatalf("postMessages in TypeScript: %v", err)
			}
			var got []Posted
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("postMessages in TypeScript printed %q: %v", out, err)
			}
			return got
		}
		got := post()
		if len(got) != 3 || got[0].ID == "" || got[1].ID == "" || got[2].Error == nil || got[2].Error.Code != "not_found" {
			t.Fatalf("%s results %+v", lang, got)
		}
		if m := testenv.NextEvent(t, alice, "msg").Msg; m.Text != posts[0].Text || !m.System || m.ID != got[0].ID {
			t.Errorf("%s: alice got %+v", lang, m)
		}
		if m := testenv.NextEvent(t, bob, "msg").Msg; m.Ch != kaiwa.Inbox("bob") || string(m.Data) != `{"reward":{"gold":100}}` {
			t.Errorf("%s: bob got %+v", lang, m)
		}
		// Again, the same cids: the same messages, nothing posted anew.
		again := post()
		if again[0].ID != got[0].ID || again[1].ID != got[1].ID {
			t.Errorf("%s: posted again %+v, first %+v", lang, again, got)
		}
	}
	// Nothing more reached alice than the two posts to world.
	if _, err := alice.Say(ctx, "world", "marker", nil); err != nil {
		t.Fatal(err)
	}
	if m := testenv.NextEvent(t, alice, "msg").Msg; m.Text != "marker" {
		t.Errorf("alice got %q after the two posts, want only the marker", m.Text)
	}
}

// TestIntegrationDocShowsTheTestedCode: docs/integration.md holds both
// files, verbatim.
func TestIntegrationDocShowsTheTestedCode(t *testing.T) {
	doc, err := os.ReadFile("../integration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"gameserver.go", "gameserver.ts"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), string(src)) {
			t.Errorf("docs/integration.md does not hold %s as it is", f)
		}
	}
}
