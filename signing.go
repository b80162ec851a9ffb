package kaiwa

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"
)

// Signed tokens: a tenant's game server may mint its users' tokens itself,
// as JWTs signed with a key the tenant registered ([SigningKey]), instead
// of asking the API for each ([Core.IssueToken]). A signed token is
// "TENANT:JWT": the prefix names the tenant whose keys verify it, as in
// registered tokens, and the JWT's header names the key (kid). The UAs
// verify signed tokens themselves with the tenant's keys, which reach them
// once through the directory ([SigningState]) and are kept current by live
// changes, so a connect costs no token lookup.

// Signing algorithms a tenant's key may use.
const (
	AlgHS256 = "HS256" // HMAC-SHA256 with a shared secret
	AlgEdDSA = "EdDSA" // Ed25519; the tenant registers its public key
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256; the tenant registers its public key
)

// Limits of signed tokens and keys.
const (
	// MaxSigningKeys bounds a tenant's signing keys (rotation needs two or
	// three at once).
	MaxSigningKeys = 10
	// MinSecretLen is the shortest HS256 secret, in bytes.
	MinSecretLen = 32
	// MaxKidLen bounds a key id.
	MaxKidLen = 64
	// ClockSkew is how far a signed token's times may be off the UA's
	// clock: exp is honoured up to ClockSkew late, and iat and nbf may be
	// up to ClockSkew in the future.
	ClockSkew = 30 * time.Second
	// MaxTokenIDLen bounds a signed token's jti.
	MaxTokenIDLen = 128
)

// SigningKey is a key that verifies a tenant's signed tokens. Secret is
// the HS256 secret; PublicKey the PEM (PKIX "PUBLIC KEY") of an EdDSA or
// ES256 key. The secret is never shown again after it was registered.
type SigningKey struct {
	Tenant    TenantID  `json:"-"`
	Kid       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Secret    []byte    `json:"secret,omitempty"`
	PublicKey string    `json:"public_key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Public returns k without its secret, for listing.
func (k SigningKey) Public() SigningKey {
	k.Secret = nil
	return k
}

// Check validates a key a tenant registers: its kid (the name rules of a
// user id), its algorithm, and its material: an HS256 secret of at least
// [MinSecretLen] bytes and no public key, or a PEM public key of the
// algorithm's type and no secret.
func (k SigningKey) Check() error {
	if k.Kid == "" || len(k.Kid) > MaxKidLen || !ValidID(k.Kid) {
		return Errorf(CodeBadRequest, "kid must be 1 to %d characters of A-Z a-z 0-9 _ . -", MaxKidLen)
	}
	switch k.Alg {
	case AlgHS256:
		if k.PublicKey != "" {
			return Errorf(CodeBadRequest, "an HS256 key has a secret, not a public_key")
		}
		if len(k.Secret) < MinSecretLen || len(k.Secret) > 512 {
			return Errorf(CodeBadRequest, "an HS256 secret has %d to 512 bytes", MinSecretLen)
		}
		return nil
	case AlgEdDSA, AlgES256:
		if len(k.Secret) > 0 {
			return Errorf(CodeBadRequest, "an %s key has a public_key, not a secret", k.Alg)
		}
		_, err := k.Verifier()
		return err
	}
	return Errorf(CodeBadRequest, "alg must be %q, %q or %q", AlgHS256, AlgEdDSA, AlgES256)
}

// Verifier returns what verifies the key's signatures: the secret for
// HS256, an ed25519.PublicKey for EdDSA, an *ecdsa.PublicKey for ES256.
func (k SigningKey) Verifier() (any, error) {
	if k.Alg == AlgHS256 {
		return k.Secret, nil
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(k.PublicKey)))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, Errorf(CodeBadRequest, "public_key must be a PEM \"PUBLIC KEY\" block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, Errorf(CodeBadRequest, "public_key: %v", err)
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if k.Alg == AlgEdDSA {
			return p, nil
		}
	case *ecdsa.PublicKey:
		if k.Alg == AlgES256 && p.Curve == elliptic.P256() {
			return p, nil
		}
	}
	return nil, Errorf(CodeBadRequest, "public_key is not an %s key", k.Alg)
}

// RevokedTokenID is a signed token's id (jti) revoked until Until (when
// the token has expired in any case).
type RevokedTokenID struct {
	ID    string    `json:"jti"`
	Until time.Time `json:"until"`
}

// UserRevocation says that a user's tokens issued before Since are revoked.
type UserRevocation struct {
	User  string    `json:"user"`
	Since time.Time `json:"since"`
}

// SigningState is everything a UA needs to admit a tenant's signed tokens
// by itself: the keys, the revoked token ids and users, and the sanctions
// in force. Partial says the tenant has more sanctions than the state
// carries ([MaxStateSanctions]): a UA then asks for each user's.
type SigningState struct {
	Keys      []SigningKey     `json:"keys"`
	Revoked   []RevokedTokenID `json:"revoked,omitempty"`
	Users     []UserRevocation `json:"users,omitempty"`
	Sanctions []Sanction       `json:"sanctions,omitempty"`
	Partial   bool             `json:"partial,omitempty"`
}

// MaxStateSanctions bounds the sanctions a [SigningState] carries.
const MaxStateSanctions = 20000

// SigningStore keeps tenants' signing keys and the revocations of signed
// tokens.
type SigningStore interface {
	// PutSigningKey adds a key ([CodeConflict] when the kid is taken or the
	// tenant has [MaxSigningKeys]).
	PutSigningKey(ctx context.Context, k SigningKey) error
	// SigningKeys lists the tenant's keys, secrets included, by kid.
	SigningKeys(ctx context.Context, t TenantID) ([]SigningKey, error)
	// DeleteSigningKey removes a key ([CodeNotFound] if absent).
	DeleteSigningKey(ctx context.Context, t TenantID, kid string) error
	// RevokeTokenID revokes a signed token id until a time.
	RevokeTokenID(ctx context.Context, t TenantID, r RevokedTokenID) error
	// RevokeUserTokens revokes the user's signed tokens issued before since.
	RevokeUserTokens(ctx context.Context, t TenantID, r UserRevocation) error
	// SigningState returns what a UA needs to admit the tenant's signed
	// tokens (revocations and sanctions in force at now).
	SigningState(ctx context.Context, t TenantID) (SigningState, error)
}

// Control kinds of signed tokens. They go to every UA (tenant-wide).
const (
	// ControlSigningKeys: the tenant's keys changed; UAs load them again.
	ControlSigningKeys ControlKind = "signing_keys"
	// ControlTokenIDRevoked: the signed token with jti ID is refused until
	// Until, and sessions that used it are closed (4001).
	ControlTokenIDRevoked ControlKind = "token_id_revoked"
)

// Events of signed tokens.
const (
	EventSigningKeyAdded   = "signing_key_added"
	EventSigningKeyDeleted = "signing_key_deleted"
	EventTokenIDRevoked    = "token_id_revoked"
)

// IsSignedToken reports whether a token is a signed one ("TENANT:JWT")
// rather than a registered one, and returns its tenant and JWT.
func IsSignedToken(token string) (TenantID, string, bool) {
	t, jwt, ok := strings.Cut(token, ":")
	if !ok || !ValidID(t) || strings.Count(jwt, ".") != 2 {
		return "", "", false
	}
	return TenantID(t), jwt, true
}
