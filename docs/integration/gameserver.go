// Package integration is the game-server side of a Kaiwa integration, as
// docs/integration.md shows it: minting signed user tokens, verifying
// webhook deliveries, and answering the before-send hook. Its test runs
// it (and the TypeScript version beside it) against a real stack.
package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintToken returns a signed Kaiwa token for user: the tenant id, a colon,
// and a JWT signed with the tenant's registered HS256 secret under kid.
func MintToken(tenant, kid string, secret []byte, user, name, jti string, ttl time.Duration) (string, error) {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "name": name, "jti": jti,
		"join":    []string{"world", "guild."},
		"publish": []string{"world", "guild.", "dm:"},
		"iat":     now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(secret)
	if err != nil {
		return "", err
	}
	return tenant + ":" + s, nil
}

// VerifyWebhook reports whether a delivery (or a before-send call) is
// Kaiwa's: the signature over the timestamp and the body, and a timestamp
// at most five minutes off.
func VerifyWebhook(secret string, h http.Header, body []byte) bool {
	ts := h.Get("Kaiwa-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("Kaiwa-Signature")))
}

// BeforeSend answers Kaiwa's before-send hook: it refuses links, masks
// one word, and lets the rest through.
func BeforeSend(secret string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil || !VerifyWebhook(secret, r.Header, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var msg struct {
			Ch, From, Text string
		}
		_ = json.Unmarshal(body, &msg)
		answer := map[string]any{"action": "allow"}
		switch {
		case strings.Contains(msg.Text, "http://") || strings.Contains(msg.Text, "https://"):
			answer = map[string]any{"action": "reject", "reason": "links_not_allowed"}
		case strings.Contains(msg.Text, "noob"):
			answer = map[string]any{"action": "replace", "text": "[friendly message]"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}
}
