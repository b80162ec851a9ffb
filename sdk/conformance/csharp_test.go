package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file runs the C# SDK's tests (sdk/unity) with Mono: its unit tests
// (TestCSharpUnit), and its conformance runner, which plays scenarios.json
// against the stack of TestConformance as the runner "csharp". Both are
// built by scripts/build-cs.sh into bin/cs at the module root, when a
// source changed. Without mono and mcs they are skipped, saying so, unless
// CI is set: then they fail.

func init() {
	runners = append(runners, struct {
		name string
		run  func(t *testing.T, control, scenarios string)
	}{name: "csharp", run: runCSharp})
}

var (
	csOnce sync.Once
	csDir  string
	csErr  error
)

// csharpBuild returns the directory of the C# SDK's assemblies, building
// them if needed, or skips the test where Mono is missing.
func csharpBuild(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"mono", "mcs"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := "the C# SDK's tests need mono and mcs (Debian: mono-devel, which scripts/deps.sh test installs): " + tool + " is not on PATH"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	csOnce.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			csErr = err
			return
		}
		csDir = filepath.Join(root, "bin", "cs")
		cmd := exec.Command(filepath.Join(root, "scripts", "build-cs.sh"), csDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			csErr = fmt.Errorf("scripts/build-cs.sh: %v\n%s", err, out)
		}
	})
	if csErr != nil {
		t.Fatal(csErr)
	}
	return csDir
}

// TestCSharpUnit runs the C# SDK's unit tests: its JSON reader and writer,
// and the client against a fake server (bad input, reconnects, resume,
// resends, dispatch).
func TestCSharpUnit(t *testing.T) {
	dir := csharpBuild(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	results, out, err := runMono(ctx, filepath.Join(dir, "Kaiwa.Tests.exe"), nil)
	report(t, results)
	if err != nil {
		t.Fatalf("Kaiwa.Tests.exe: %v\n%s", err, out)
	}
}

// runCSharp plays the scenarios with the C# SDK's runner.
func runCSharp(t *testing.T, control, scenarios string) {
	dir := csharpBuild(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := []string{"KAIWA_CONFORMANCE_CONTROL=" + control, "KAIWA_CONFORMANCE_SCENARIOS=" + scenarios}
	results, out, err := runMono(ctx, filepath.Join(dir, "KaiwaConformance.exe"), env)
	report(t, results)
	if err != nil {
		t.Fatalf("KaiwaConformance.exe: %v\n%s", err, out)
	}
}

// result is one line "PASS NAME ...", "FAIL NAME: WHY" or "SKIP NAME: WHY"
// of a C# program, with the indented lines that follow it.
type result struct {
	outcome    string // PASS, FAIL, SKIP
	name, text string
}

// runMono runs a C# program with mono and returns its result lines and
// its whole output.
func runMono(ctx context.Context, exe string, env []string) ([]result, string, error) {
	cmd := exec.CommandContext(ctx, "mono", "--debug", exe)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var results []result
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "PASS "):
			name, _, _ := strings.Cut(line[5:], " (")
			results = append(results, result{outcome: "PASS", name: name, text: line})
		case strings.HasPrefix(line, "FAIL "), strings.HasPrefix(line, "SKIP "):
			name, _, _ := strings.Cut(line[5:], ": ")
			results = append(results, result{outcome: line[:4], name: name, text: line})
		case strings.HasPrefix(line, "    ") && len(results) > 0:
			results[len(results)-1].text += "\n" + line
		}
	}
	return results, out.String(), err
}

// report makes a subtest of each result, so that go test -v lists them.
func report(t *testing.T, results []result) {
	t.Helper()
	for _, r := range results {
		t.Run(r.name, func(t *testing.T) {
			switch r.outcome {
			case "FAIL":
				t.Error(r.text)
			case "SKIP":
				t.Skip(r.text)
			default:
				t.Log(r.text)
			}
		})
	}
}

// TestUnityPackage checks sdk/unity's layout as Unity's package manager
// needs it from a git URL: a package installed from git is immutable, so
// every file and folder Unity imports (all but hidden ones and those under
// a folder ending in "~") needs a committed .meta with a GUID of its own;
// package.json names what exists; the CHANGELOG's newest entry is the
// package's version.
func TestUnityPackage(t *testing.T) {
	root := filepath.Join("..", "unity")
	guids := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if asset, ok := strings.CutSuffix(path, ".meta"); ok {
			if _, err := os.Stat(asset); err != nil {
				t.Errorf("%s has no asset", rel)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var guid string
			for _, line := range strings.Split(string(b), "\n") {
				if g, ok := strings.CutPrefix(line, "guid: "); ok {
					guid = strings.TrimSpace(g)
				}
			}
			if len(guid) != 32 || strings.Trim(guid, "0123456789abcdef") != "" {
				t.Errorf("%s: guid %q is not 32 hex digits", rel, guid)
			} else if other, dup := guids[guid]; dup {
				t.Errorf("%s and %s have the same guid", rel, other)
			}
			guids[guid] = rel
			return nil
		}
		if _, err := os.Stat(path + ".meta"); err != nil {
			t.Errorf("%s has no .meta file (Unity ignores such a file in a package from git)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var pkg struct {
		Name, Version, Unity string
		Samples              []struct{ Path string }
	}
	readJSON(t, filepath.Join(root, "package.json"), &pkg)
	if pkg.Name != "com.kaiwa-chat.kaiwa" || pkg.Version == "" || pkg.Unity == "" {
		t.Errorf("package.json: name %q version %q unity %q", pkg.Name, pkg.Version, pkg.Unity)
	}
	for _, s := range pkg.Samples {
		if st, err := os.Stat(filepath.Join(root, s.Path)); err != nil || !st.IsDir() {
			t.Errorf("package.json: sample %s is not a folder", s.Path)
		}
	}
	var asmdef struct {
		Name               string
		NoEngineReferences bool
	}
	readJSON(t, filepath.Join(root, "Runtime", "Kaiwa.asmdef"), &asmdef)
	if asmdef.Name != "Kaiwa" || !asmdef.NoEngineReferences {
		t.Errorf("Kaiwa.asmdef: name %q, noEngineReferences %v; want Kaiwa, true (the runtime uses no UnityEngine API)", asmdef.Name, asmdef.NoEngineReferences)
	}
	changelog, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(changelog), "\n") {
		if v, ok := strings.CutPrefix(line, "## ["); ok {
			if v, _, _ = strings.Cut(v, "]"); v != pkg.Version {
				t.Errorf("CHANGELOG.md's newest entry is %s, package.json's version %s", v, pkg.Version)
			}
			break
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
