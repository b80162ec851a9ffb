package versions

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadAppliesLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "versions.json")
	if err := os.WriteFile(path, []byte(`[
		{"name": "v1", "status": "deprecated", "sunset": "2027-06-30"},
		{"name": "v2", "status": "supported", "tenants": ["acme"]},
		{"name": "v0", "status": "retired"}
	]`), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := reg.Get("v1")
	if v1.Status != Deprecated || v1.Sunset.Format("2006-01-02") != "2027-06-30" || v1.Codec == nil {
		t.Errorf("v1 = %+v", v1)
	}
	v2, _ := reg.Get("v2")
	if !v2.Allows("acme") || v2.Allows("rival") || !v2.Resume {
		t.Errorf("v2 = %+v", v2)
	}
	v0, ok := reg.Get("v0")
	if !ok || v0.Live() {
		t.Errorf("v0 = %+v, %v", v0, ok)
	}
	if n := len(reg.Live()); n != 2 {
		t.Errorf("%d live versions", n)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	for name, body := range map[string]string{
		"not json":            `{`,
		"unknown status":      `[{"name":"v1","status":"sunsetting"}]`,
		"deprecated, no date": `[{"name":"v1","status":"deprecated"}]`,
		"bad date":            `[{"name":"v1","status":"deprecated","sunset":"soon"}]`,
		"no codec":            `[{"name":"v9","status":"supported"}]`,
		"named twice":         `[{"name":"v1","status":"supported"},{"name":"v1","status":"retired"}]`,
		"bad tenant":          `[{"name":"v1","status":"supported","tenants":["a b"]}]`,
		"bad retired name":    `[{"name":"../x","status":"retired"}]`,
	} {
		path := filepath.Join(t.TempDir(), "versions.json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if reg, err := Load(""); err != nil || len(reg.Live()) != len(Default().Live()) {
		t.Errorf("no file: %v", err)
	}
}
