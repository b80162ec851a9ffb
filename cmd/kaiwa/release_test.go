package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The release checks run after make release has built dist/: they skip
// in plain go test.
const (
	releaseDirEnv     = "KAIWA_RELEASE_DIR"     // dist/, absolute
	releaseVersionEnv = "KAIWA_RELEASE_VERSION" // what kaiwa version must print
)

// releaseBin returns dist/kaiwa-linux-ARCH, or skips the test outside
// make release.
func releaseBin(t *testing.T, arch string) string {
	t.Helper()
	dir := os.Getenv(releaseDirEnv)
	if dir == "" {
		t.Skip("make release runs the release checks (" + releaseDirEnv + ")")
	}
	return filepath.Join(dir, "kaiwa-linux-"+arch)
}

// missing skips a check whose tool is not installed, or fails it under
// CI, where scripts/deps.sh release has installed everything.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (scripts/deps.sh release installs it)", what)
	}
	t.Skipf("%s is missing (scripts/deps.sh release installs it)", what)
}

// command runs name with args and returns its output, failing the test
// when it fails.
func command(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestReleaseBinaries: each binary is a static executable of its
// architecture, and prints the version it was stamped with: the amd64 one
// natively, the arm64 one under qemu-user-static, which also runs one
// package's tests built for arm64 (go test -exec).
func TestReleaseBinaries(t *testing.T) {
	want := "kaiwa " + os.Getenv(releaseVersionEnv) + "\n"
	for arch, machine := range map[string]string{"amd64": "x86-64", "arm64": "ARM aarch64"} {
		t.Run(arch, func(t *testing.T) {
			bin := releaseBin(t, arch)
			desc := command(t, nil, "file", "-b", bin)
			if !strings.Contains(desc, "ELF 64-bit") || !strings.Contains(desc, machine) || !strings.Contains(desc, "statically linked") {
				t.Errorf("file says %q, want a statically linked %s ELF executable", strings.TrimSpace(desc), machine)
			}
			t.Logf("file: %s", strings.TrimSpace(desc))
			var got string
			switch arch {
			case "amd64":
				got = command(t, nil, bin, "version")
			case "arm64":
				qemu, err := exec.LookPath("qemu-aarch64-static")
				if err != nil {
					missing(t, "qemu-aarch64-static")
				}
				got = command(t, nil, qemu, bin, "version")
				out := command(t, []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"},
					"go", "test", "-count=1", "-exec", qemu, "github.com/kaiwa-chat/kaiwa/internal/jsonw")
				t.Logf("go test -exec %s (GOARCH=arm64) internal/jsonw: %s", filepath.Base(qemu), strings.TrimSpace(out))
			}
			if got != want {
				t.Errorf("kaiwa version printed %q, want %q", got, want)
			}
		})
	}
}

// TestReleaseImage builds the container image from deploy/Containerfile
// with the amd64 binary (scripts/image.sh: buildah, or podman) and runs
// kaiwa version in it.
func TestReleaseImage(t *testing.T) {
	releaseBin(t, "amd64")
	if os.Getenv("KAIWA_SKIP_IMAGE") != "" {
		t.Skip("KAIWA_SKIP_IMAGE is set")
	}
	_, errB := exec.LookPath("buildah")
	_, errP := exec.LookPath("podman")
	if errB != nil && errP != nil {
		missing(t, "buildah (or podman)")
	}
	version := os.Getenv(releaseVersionEnv)
	tag := lastLine(command(t, []string{"VERSION=" + version}, "../../scripts/image.sh", "amd64")) // the script prints the tag last
	if tag != "kaiwa:"+version {
		t.Fatalf("scripts/image.sh built %q, want kaiwa:%s", tag, version)
	}
	var got string
	if errB == nil {
		ctr := strings.TrimSpace(command(t, nil, "buildah", "from", "--pull-never", tag))
		t.Cleanup(func() { _ = exec.Command("buildah", "rm", ctr).Run() })
		// An OCI runtime (crun) first; where it cannot make a container
		// (cgroups it does not support), buildah's chroot isolation runs
		// the image's own files all the same.
		run := exec.Command("buildah", "run", ctr, "--", "/usr/local/bin/kaiwa", "version")
		if b, err := run.CombinedOutput(); err == nil {
			got = string(b)
		} else {
			t.Logf("buildah run with the OCI runtime failed here (%v: %s); with --isolation chroot", err, lastLine(string(b)))
			got = command(t, nil, "buildah", "run", "--isolation", "chroot", ctr, "--", "/usr/local/bin/kaiwa", "version")
		}
		info := command(t, nil, "buildah", "images", "--format", "{{.Name}}:{{.Tag}} {{.Size}}", tag)
		t.Logf("image %s", strings.TrimSpace(info))
	} else {
		got = command(t, nil, "podman", "run", "--rm", "--pull=never", tag, "version")
	}
	if got != "kaiwa "+version+"\n" {
		t.Errorf("kaiwa version in the image printed %q, want %q", got, "kaiwa "+version+"\n")
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
