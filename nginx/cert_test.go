package nginx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedCert(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	certFile, keyFile, err := SelfSignedCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("load pair: %v", err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", c.PublicKey)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c)
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := c.Verify(x509.VerifyOptions{DNSName: h, Roots: roots}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", h, err)
		}
	}
	if c.NotAfter.Before(time.Now().Add(CertLifetime - 2*time.Hour)) {
		t.Errorf("certificate expires already at %v", c.NotAfter)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	// A good pair is reused as it is.
	before, _ := os.ReadFile(certFile)
	if _, _, err := SelfSignedCert(dir); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(certFile); !bytes.Equal(before, after) {
		t.Error("a valid certificate was replaced")
	}
}

func TestSelfSignedCertRenewsExpiring(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// A certificate made 350 days ago expires within CertRenewBefore.
	certPEM, keyPEM, err := newCert(time.Now().Add(-350 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if certUsable(certFile, keyFile, time.Now()) {
		t.Fatal("expiring certificate counted as usable")
	}
	if _, _, err := SelfSignedCert(dir); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(certFile); bytes.Equal(after, certPEM) {
		t.Error("expiring certificate was not replaced")
	}
	if !certUsable(certFile, keyFile, time.Now()) {
		t.Error("renewed certificate is not usable")
	}

	// A key that does not match the certificate is replaced too.
	_, otherKey, err := newCert(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if certUsable(certFile, keyFile, time.Now()) {
		t.Error("mismatched key counted as usable")
	}
}
