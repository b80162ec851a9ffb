package versions

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// FileEntry is one version's lifecycle in a versions file: the codec comes
// from the build, everything else from the file.
type FileEntry struct {
	Name    string           `json:"name"`
	Status  Status           `json:"status"`
	Sunset  string           `json:"sunset,omitempty"` // RFC 3339 date or time
	Tenants []kaiwa.TenantID `json:"tenants,omitempty"`
}

// Load returns the built-in registry ([Default]) with the lifecycle of the
// versions named in a JSON file applied: a list of [FileEntry]. A version
// the file does not name keeps its built-in lifecycle; the file cannot
// name a version this build has no codec for, except to retire it (the
// paths of a retired version only answer 410). An empty path returns
// [Default].
//
//	[{"name": "v1", "status": "deprecated", "sunset": "2027-06-30"},
//	 {"name": "v2", "status": "supported"},
//	 {"name": "v3-acme", "status": "supported", "tenants": ["acme"]}]
func Load(path string) (*Registry, error) {
	reg := Default()
	if path == "" {
		return reg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("versions file: %w", err)
	}
	var entries []FileEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("versions file %s: %w", path, err)
	}
	return reg.apply(entries)
}

func (r *Registry) apply(entries []FileEntry) (*Registry, error) {
	out := slices.Clone(r.versions)
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.Name] {
			return nil, fmt.Errorf("versions file: %s named twice", e.Name)
		}
		seen[e.Name] = true
		switch e.Status {
		case Supported, Deprecated, Retired:
		default:
			return nil, fmt.Errorf("versions file: %s: unknown status %q", e.Name, e.Status)
		}
		var sunset time.Time
		if e.Sunset != "" {
			t, err := time.Parse(time.RFC3339, e.Sunset)
			if err != nil {
				t, err = time.Parse(time.DateOnly, e.Sunset)
			}
			if err != nil {
				return nil, fmt.Errorf("versions file: %s: sunset %q is not a date", e.Name, e.Sunset)
			}
			sunset = t
		}
		if e.Status == Deprecated && sunset.IsZero() {
			return nil, fmt.Errorf("versions file: %s: a deprecated version needs a sunset", e.Name)
		}
		for _, t := range e.Tenants {
			if !kaiwa.ValidID(string(t)) {
				return nil, fmt.Errorf("versions file: %s: invalid tenant %q", e.Name, t)
			}
		}
		i := slices.IndexFunc(out, func(v Version) bool { return v.Name == e.Name })
		if i < 0 {
			if e.Status != Retired {
				return nil, fmt.Errorf("versions file: %s: this build has no codec for it", e.Name)
			}
			if !validName(e.Name) {
				return nil, fmt.Errorf("versions file: invalid version name %q", e.Name)
			}
			out = append(out, Version{Name: e.Name, Status: Retired})
			continue
		}
		out[i].Status, out[i].Sunset, out[i].Tenants = e.Status, sunset, e.Tenants
	}
	return NewRegistry(out...), nil
}

func validName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
