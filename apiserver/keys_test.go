package apiserver

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kaiwa-chat/kaiwa"
)

// keys lists the API keys of the tenant of key.
func (e *testEnv) keys(key string) []keyJSON {
	e.t.Helper()
	rec := e.do("GET", "/v1/api/keys", key, "")
	wantStatus(e.t, rec, http.StatusOK)
	var got keysResponse
	decode(e.t, rec, &got)
	return got.Keys
}

func TestKeys(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	keys := e.keys(e.keyA)
	if len(keys) != 1 || keys[0].RevokedAt != "" {
		t.Fatalf("keys %+v", keys)
	}
	first := keys[0]
	for name, v := range map[string]string{"created_at": first.CreatedAt, "last_used_at": first.LastUsedAt} {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			t.Errorf("%s %q: %v", name, v, err)
		}
	}

	// A second key, shown once; both work.
	rec := e.do("POST", "/v1/api/keys", e.keyA, "")
	wantStatus(t, rec, http.StatusCreated)
	var made newKeyResponse
	decode(t, rec, &made)
	if tenant, ok := kaiwa.CredentialTenant(made.Key); !ok || tenant != e.tenantA {
		t.Fatalf("new key %q", made.Key)
	}
	keys = e.keys(made.Key)
	if len(keys) != 2 || keys[1].ID <= first.ID {
		t.Fatalf("keys %+v", keys)
	}
	second := keys[1]

	// The old key is revoked with the new one and stops working; the list
	// keeps it, marked.
	wantStatus(t, e.do("DELETE", "/v1/api/keys/"+strconv.FormatInt(first.ID, 10), made.Key, ""), http.StatusNoContent)
	wantError(t, e.do("GET", "/v1/api/keys", e.keyA, ""), 401, kaiwa.CodeUnauthorized)
	keys = e.keys(made.Key)
	if len(keys) != 2 || keys[0].RevokedAt == "" || keys[1].RevokedAt != "" {
		t.Errorf("keys after revoking %+v", keys)
	}
	wantError(t, e.do("DELETE", "/v1/api/keys/"+strconv.FormatInt(first.ID, 10), made.Key, ""), 404, kaiwa.CodeNotFound)

	// The last active key cannot go, even by itself.
	wantError(t, e.do("DELETE", "/v1/api/keys/"+strconv.FormatInt(second.ID, 10), made.Key, ""), 409, kaiwa.CodeConflict)
	// With another, a key may revoke itself.
	rec = e.do("POST", "/v1/api/keys", made.Key, "")
	var third newKeyResponse
	decode(t, rec, &third)
	wantStatus(t, e.do("DELETE", "/v1/api/keys/"+strconv.FormatInt(second.ID, 10), made.Key, ""), http.StatusNoContent)
	wantError(t, e.do("GET", "/v1/api/keys", made.Key, ""), 401, kaiwa.CodeUnauthorized)
	wantStatus(t, e.do("GET", "/v1/api/keys", third.Key, ""), http.StatusOK)

	for _, id := range []string{"0", "-1", "x", "1.5", "99999999999999999999", "%31%32a"} {
		wantError(t, e.do("DELETE", "/v1/api/keys/"+id, third.Key, ""), 400, kaiwa.CodeBadRequest)
	}
	wantError(t, e.do("DELETE", "/v1/api/keys/12345", third.Key, ""), 404, kaiwa.CodeNotFound)

	e.store.fail(failTenants, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/keys", third.Key, ""), 503, kaiwa.CodeUnavailable)
}
