package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The deploy kit (deploy/) runs kaiwa with flags and environment
// variables; these tests keep it in step with the binary. The cluster
// suite (make test-cluster) runs the kit for real.

// deployCommand runs a kaiwa command line of the kit with nothing to
// reach (NATS and MySQL refuse at once), and fails t when its flags do
// not parse (a usage error, exit 2).
func deployCommand(t *testing.T, where string, env map[string]string, args []string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["KAIWA_NATS_URL"] = "nats://127.0.0.1:1"
	env["KAIWA_MYSQL_DSN"] = "kaiwa:x@tcp(127.0.0.1:1)/kaiwa"
	delete(env, "KAIWA_MYSQL_READ_DSN")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, stderr, err := runArgsCtx(ctx, env, args...)
	if err == nil {
		return
	}
	if exitCode(err) == 2 || errors.Is(err, flag.ErrHelp) {
		t.Errorf("%s: kaiwa %s: %v\n%s", where, strings.Join(args, " "), err, stderr)
	}
}

// TestComposeCommandsParse: every kaiwa command of deploy/compose.yaml
// takes its flags.
func TestComposeCommandsParse(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, image := range []string{"docker.io/library/nats:2.10", "docker.io/library/mariadb:", "docker.io/library/nginx:", "localhost/kaiwa:"} {
		if !strings.Contains(text, "image: "+image) {
			t.Errorf("compose.yaml names no %s image", image)
		}
	}
	n := 0
	for rest := text; ; {
		i := strings.Index(rest, "command: [")
		if i < 0 {
			break
		}
		rest = rest[i+len("command: "):]
		end := strings.Index(rest, "]")
		var args []string
		if err := json.Unmarshal([]byte(rest[:end+1]), &args); err != nil {
			t.Fatalf("compose.yaml: command %q: %v", rest[:end+1], err)
		}
		rest = rest[end:]
		switch args[0] {
		case "ua", "api", "logwriter", "migrate", "nginx-config", "nats":
			if args[0] == "nginx-config" {
				args = append(args, "--out", filepath.Join(t.TempDir(), "nginx.conf"))
			}
			deployCommand(t, "compose.yaml", nil, args)
			n++
		}
	}
	if n < 6 {
		t.Errorf("found %d kaiwa commands in compose.yaml, want at least 6", n)
	}
}

// TestUnitCommandsParse: the kaiwa command lines of the systemd units
// (ExecStart, ExecStartPre) take their flags, with the instance "v1".
func TestUnitCommandsParse(t *testing.T) {
	t.Parallel()
	units, err := filepath.Glob("../../deploy/systemd/*.service")
	if err != nil || len(units) < 6 {
		t.Fatalf("units: %v %v", units, err)
	}
	n := 0
	for _, u := range units {
		f, err := os.Open(u)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		env := map[string]string{}
		for sc.Scan() {
			line := sc.Text()
			if file, ok := strings.CutPrefix(line, "EnvironmentFile="); ok {
				readEnvFile(t, env, "../../deploy/etc/"+filepath.Base(strings.TrimPrefix(file, "-")))
				continue
			}
			_, cmd, ok := strings.Cut(line, "=/usr/local/bin/kaiwa ")
			if !ok || !strings.HasPrefix(line, "Exec") {
				continue
			}
			args := strings.Fields(strings.ReplaceAll(cmd, "%i", "v1"))
			for i, a := range args {
				if a == "--out" || a == "--config" {
					args[i+1] = filepath.Join(t.TempDir(), "out")
				}
			}
			if args[0] == "nats" {
				continue // --config names a cluster node's file: the cluster suite runs it
			}
			deployCommand(t, filepath.Base(u), env, args)
			n++
		}
		f.Close()
	}
	if n < 5 {
		t.Errorf("found %d kaiwa command lines in the units, want at least 5", n)
	}
}

// TestDeployEnvFilesNameRealVariables: every KAIWA_ variable the kit's
// environment files set is one some kaiwa command reads.
func TestDeployEnvFilesNameRealVariables(t *testing.T) {
	t.Parallel()
	var help strings.Builder
	for _, cmd := range []string{"ua", "api", "logwriter", "migrate", "nginx-config", "nats", "nodes"} {
		_, stderr, _ := runArgs(t, nil, cmd, "-h")
		help.WriteString(stderr)
	}
	files, _ := filepath.Glob("../../deploy/etc/*.env")
	if len(files) < 4 {
		t.Fatalf("env files: %v", files)
	}
	assign := regexp.MustCompile(`(?m)^#?\s*(KAIWA_[A-Z_]+)=`)
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range assign.FindAllStringSubmatch(string(data), -1) {
			if !strings.Contains(help.String(), "(env "+m[1]+")") {
				t.Errorf("%s sets %s, which no kaiwa command reads", filepath.Base(name), m[1])
			}
		}
	}
}

// readEnvFile adds the NAME=VALUE lines of an environment file to env.
func readEnvFile(t *testing.T, env map[string]string, name string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("the units name %s: %v", name, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			env[strings.TrimSpace(k)] = v
		}
	}
}
