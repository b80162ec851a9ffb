// Package versions is the registry of Kaiwa's wire protocol versions. A
// version is a name ("v1"), a lifecycle status, optionally the tenants it is
// restricted to, and a wire codec. Every other part (the UA, the API, the
// nginx config, the dev supervisor) reads the registry instead of naming
// versions itself.
package versions

import (
	"slices"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// Status is where a version is in its lifecycle.
type Status string

// The lifecycle of a version: supported → deprecated → retired.
const (
	Supported  Status = "supported"
	Deprecated Status = "deprecated"
	Retired    Status = "retired"
)

// Version is one protocol version.
type Version struct {
	// Name is the path segment clients pin: "v1".
	Name   string
	Status Status
	// Sunset is when a deprecated version is retired.
	Sunset time.Time
	// Tenants, when not empty, are the only tenants allowed to use the version.
	Tenants []kaiwa.TenantID
	// Codec reads and writes the version's frames. Nil for retired versions.
	Codec Codec
	// Resume says the version has sequence numbers, resume and the
	// reconnect op (v2 and later).
	Resume bool
}

// Live reports whether the version is served (supported or deprecated).
func (v Version) Live() bool { return v.Status == Supported || v.Status == Deprecated }

// Allows reports whether tenant t may use the version.
func (v Version) Allows(t kaiwa.TenantID) bool {
	return len(v.Tenants) == 0 || slices.Contains(v.Tenants, t)
}

// Registry is an ordered set of versions, oldest first.
type Registry struct {
	versions []Version
}

// NewRegistry returns a registry of the given versions, oldest first.
func NewRegistry(vs ...Version) *Registry { return &Registry{versions: vs} }

// Default returns the registry of the versions this build of Kaiwa ships.
func Default() *Registry {
	return NewRegistry(
		Version{Name: "v1", Status: Supported, Codec: V1{}},
		Version{Name: "v2", Status: Supported, Codec: V2{}, Resume: true},
	)
}

// All returns every version, oldest first.
func (r *Registry) All() []Version { return slices.Clone(r.versions) }

// Live returns the supported and deprecated versions, oldest first.
func (r *Registry) Live() []Version {
	var out []Version
	for _, v := range r.versions {
		if v.Live() {
			out = append(out, v)
		}
	}
	return out
}

// Get returns the version with the given name.
func (r *Registry) Get(name string) (Version, bool) {
	for _, v := range r.versions {
		if v.Name == name {
			return v, true
		}
	}
	return Version{}, false
}
