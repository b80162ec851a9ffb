// Package integration is the game-server side of a Kaiwa integration, as
// docs/integration.md shows it: minting signed user tokens, verifying
// webhook deliveries, answering the before-send hook, and posting system
// messages in batches. Its test runs it (and the TypeScript version beside
// it) against a real stack.
package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// Post is one system message: to a channel (Ch) or to a player's inbox
// (User). Its CID makes posting it again safe.
type Post struct {
	Ch   string `json:"ch,omitempty"`
	User string `json:"user,omitempty"`
	Text string `json:"text,omitempty"`
	Data any    `json:"data,omitempty"`
	CID  string `json:"cid"`
}

// Posted is a post's outcome: its id and seq, or Kaiwa's error.
type Posted struct {
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// PostMessages posts up to 100 system messages in one call (POST
// {api}/messages/batch) and posts again, up to twice more, those whose
// outcome Kaiwa could not confirm ("unavailable"): their CIDs keep them
// from being posted twice.
func PostMessages(ctx context.Context, api, key string, posts []Post) ([]Posted, error) {
	out := make([]Posted, len(posts))
	todo := make([]int, len(posts))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; attempt < 3 && len(todo) > 0; attempt++ {
		batch := make([]Post, len(todo))
		for j, i := range todo {
			batch[j] = posts[i]
		}
		body, err := json.Marshal(map[string]any{"messages": batch})
		if err != nil {
			return out, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/messages/batch", bytes.NewReader(body))
		if err != nil {
			return out, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return out, err
		}
		var answer struct {
			Results []Posted `json:"results"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&answer)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || len(answer.Results) != len(todo) {
			return out, fmt.Errorf("kaiwa: POST /messages/batch: HTTP %d", resp.StatusCode)
		}
		var again []int
		for j, i := range todo {
			out[i] = answer.Results[j]
			if out[i].Error != nil && out[i].Error.Code == "unavailable" {
				again = append(again, i)
			}
		}
		todo = again
	}
	return out, nil
}
