package main

import (
	"strings"
	"testing"
)

// TestNginxConfigForHostRoles: a UA host's configuration (--no-api)
// routes only the WebSockets, an API host's (--ua-per-version 0) only
// the API.
func TestNginxConfigForHostRoles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ua, _, err := runArgs(t, nil, "nginx-config", "--https", "", "--prefix", dir, "--sockets", dir, "--no-api", "--ua-per-version", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ua, "location = /v2/ws") || strings.Contains(ua, "/api/") {
		t.Errorf("UA host config:\n%s", ua)
	}
	api, _, err := runArgs(t, nil, "nginx-config", "--https", "", "--prefix", dir, "--sockets", dir, "--ua-per-version", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(api, "location /v2/api/") || strings.Contains(api, "/ws") {
		t.Errorf("API host config:\n%s", api)
	}
}
