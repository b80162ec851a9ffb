package main

import (
	"os"
	"path/filepath"
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

// TestNginxConfigSelfSigned: --self-signed makes a certificate for a
// TLS listener without --cert and --key, and reuses it the next time;
// without either, --https is refused.
func TestNginxConfigSelfSigned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tls := filepath.Join(dir, "tls")
	args := []string{"nginx-config", "--https", "127.0.0.1:8443", "--prefix", dir, "--sockets", dir, "--self-signed", tls}
	conf, _, err := runArgs(t, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(tls, "cert.pem")
	if !strings.Contains(conf, `ssl_certificate "`+cert+`";`) || !strings.Contains(conf, `ssl_certificate_key "`+filepath.Join(tls, "key.pem")+`";`) {
		t.Errorf("config does not use the certificate made in %s:\n%s", tls, conf)
	}
	made, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runArgs(t, nil, args...); err != nil {
		t.Fatal(err)
	}
	if again, err := os.ReadFile(cert); err != nil || string(again) != string(made) {
		t.Errorf("the certificate was made again (%v)", err)
	}
	if _, _, err := runArgs(t, nil, "nginx-config", "--https", "127.0.0.1:8443", "--prefix", dir, "--sockets", dir); err == nil || !strings.Contains(err.Error(), "--self-signed") {
		t.Errorf("--https without a certificate: %v", err)
	}
}
