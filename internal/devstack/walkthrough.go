package devstack

import (
	"io"
	"os"
	"path/filepath"
	"text/template"

	"github.com/kaiwa-chat/kaiwa/versions"
)

// walkthrough is what the banner printed once the stack is up shows.
type walkthrough struct {
	cfg       Config
	varDir    string // as the user gave it, for copy-paste
	keyFile   string
	key       string
	dsn       string
	natsURL   string
	accessLog string
}

// demoVersion is the version the walkthrough uses: the oldest supported
// one, else the newest live one.
func demoVersion(r *versions.Registry) string {
	live := r.Live()
	for _, v := range live {
		if v.Status == versions.Supported {
			return v.Name
		}
	}
	return live[len(live)-1].Name
}

var walkthroughTmpl = template.Must(template.New("walkthrough").Parse(`
Kaiwa is running.

  Tenant API      https://{{.HTTPS}}/{{.V}}/api/     (plain: http://{{.HTTP}}/{{.V}}/api/)
  WebSocket       wss://{{.HTTPS}}/{{.V}}/ws       (plain: ws://{{.HTTP}}/{{.V}}/ws)
{{- range .Others}}
                  version {{.}}: /{{.}}/api/ and /{{.}}/ws
{{- end}}
{{- if .Demo}}
  Demo page       https://{{.HTTPS}}/demo/       (the TypeScript SDK's: accept the certificate, paste a token from step 2){{if not .DemoBuilt}}
                  the SDK is not built yet: make build (or cd sdk/js && npm ci && npm run build){{end}}
{{- end}}
  NATS            {{.NATS}}
  MySQL           {{.DSN}}
  Access log      {{.AccessLog}}
  Demo tenant     demo
  Demo API key    {{.Key}}   (kept in {{.KeyFile}})

The certificate is self-signed: curl needs -k and kaiwa chat --insecure.

  export KAIWA_API=https://{{.HTTPS}}/{{.V}}/api KAIWA_KEY=$(cat {{.KeyFile}})

1. Create a channel:

  curl -k -X PUT "$KAIWA_API/channels/world" -H "Authorization: Bearer $KAIWA_KEY" \
    -H 'Content-Type: application/json' -d '{"kind":"open","title":"World"}'

2. Get a token for each of two players (the answer's "token"):

  curl -k -X POST "$KAIWA_API/tokens" -H "Authorization: Bearer $KAIWA_KEY" \
    -H 'Content-Type: application/json' \
    -d '{"user":"alice","name":"Alice","ttl_seconds":3600,"join":["world"],"publish":["world","dm:"]}'
  curl -k -X POST "$KAIWA_API/tokens" -H "Authorization: Bearer $KAIWA_KEY" \
    -H 'Content-Type: application/json' \
    -d '{"user":"bob","name":"Bob","ttl_seconds":3600,"join":["world"],"publish":["world","dm:"]}'

3. Chat, in two terminals, one token each (pasted at the prompt, so that it
   never shows in the process list or the shell history):

  read -rsp 'token: ' KAIWA_TOKEN && export KAIWA_TOKEN
  {{.Exe}} chat --url wss://{{.HTTPS}}/{{.V}}/ws --insecure --join world
{{- if .Demo}}

   Or in two browser windows: https://{{.HTTPS}}/demo/, a token each, join world.
{{- end}}

4. Send a system message to the channel:

  curl -k -X POST "$KAIWA_API/channels/world/messages" -H "Authorization: Bearer $KAIWA_KEY" \
    -H 'Content-Type: application/json' -d '{"text":"Server restarts in 5 minutes"}'

5. Read the channel's message log:

  curl -k "$KAIWA_API/channels/world/messages?limit=20" -H "Authorization: Bearer $KAIWA_KEY"

Ctrl-C stops everything.

`))

func printWalkthrough(w io.Writer, wt walkthrough) {
	v := demoVersion(wt.cfg.Registry)
	var others []string
	for _, lv := range wt.cfg.Registry.Live() {
		if lv.Name != v {
			others = append(others, lv.Name)
		}
	}
	keyFile := filepath.Join(wt.varDir, filepath.Base(wt.keyFile))
	exe := wt.cfg.Exe
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && filepath.IsLocal(rel) {
			exe = "./" + rel
		}
	}
	_ = walkthroughTmpl.Execute(w, map[string]any{
		"HTTPS": wt.cfg.HTTPSListen, "HTTP": wt.cfg.HTTPListen, "V": v, "Others": others,
		"NATS": wt.natsURL, "DSN": wt.dsn, "AccessLog": wt.accessLog,
		"Key": wt.key, "KeyFile": keyFile, "Exe": exe,
		"Demo": wt.cfg.DemoDir != "", "DemoBuilt": fileExists(filepath.Join(wt.cfg.DemoDir, "kaiwa", "index.js")),
	})
}

func fileExists(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}
