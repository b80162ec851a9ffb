package kaiwa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Credentials (API keys and user tokens) have the form "TENANT:SECRET", where
// SECRET is 32 random bytes in unpadded base64url. The tenant prefix lets
// every lookup be scoped by tenant; only [HashCredential] of the whole
// string is stored.

// NewCredential returns a fresh credential for the tenant.
func NewCredential(tenant TenantID) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return string(tenant) + ":" + base64.RawURLEncoding.EncodeToString(b[:])
}

// CredentialTenant returns the tenant named by a credential; ok is false
// when it is malformed.
func CredentialTenant(cred string) (tenant TenantID, ok bool) {
	t, secret, found := strings.Cut(cred, ":")
	if !found || !ValidID(t) || len(secret) != 43 {
		return "", false
	}
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return TenantID(t), true
}

// HashCredential returns the hex SHA-256 of a credential, the only form in
// which credentials are stored. Credentials carry 256 random bits, so a fast
// hash is enough.
func HashCredential(cred string) string {
	sum := sha256.Sum256([]byte(cred))
	return hex.EncodeToString(sum[:])
}
