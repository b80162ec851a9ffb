package apiserver

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

func TestSigningKeys(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	const secret = "0123456789abcdef0123456789abcdef"
	rec := e.do("POST", "/v1/api/signing-keys", e.keyA, `{"kid":"k1","alg":"HS256","secret":"`+secret+`"}`)
	wantStatus(t, rec, http.StatusCreated)
	if strings.Contains(rec.Body.String(), secret) || !strings.Contains(rec.Body.String(), `"kid":"k1"`) {
		t.Errorf("add answered %s", rec.Body)
	}
	if got := e.bus.Controls(); len(got) != 1 || got[0].Kind != kaiwa.ControlSigningKeys || got[0].Tenant != e.tenantA {
		t.Errorf("controls %+v", got)
	}
	wantError(t, e.do("POST", "/v1/api/signing-keys", e.keyA, `{"kid":"k1","alg":"HS256","secret":"`+secret+`"}`), 409, kaiwa.CodeConflict)
	for _, body := range []string{
		`{"kid":"k2","alg":"HS256","secret":"short"}`,
		`{"kid":"k2","alg":"none","secret":"` + secret + `"}`,
		`{"kid":"k2","alg":"HS384","secret":"` + secret + `"}`,
		`{"kid":"k2","alg":"EdDSA","public_key":"not pem"}`,
		`{"kid":"a b","alg":"HS256","secret":"` + secret + `"}`,
		`{"kid":"k2","alg":"ES256","secret":"` + secret + `"}`,
	} {
		wantError(t, e.do("POST", "/v1/api/signing-keys", e.keyA, body), 400, kaiwa.CodeBadRequest)
	}
	rec = e.do("GET", "/v1/api/signing-keys", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	if body := rec.Body.String(); strings.Contains(body, secret) || !strings.Contains(body, `"alg":"HS256"`) {
		t.Errorf("list answered %s", body)
	}
	// B sees none of A's keys and cannot delete them.
	if rec := e.do("GET", "/v1/api/signing-keys", e.keyB, ""); !strings.Contains(rec.Body.String(), `"keys":[]`) {
		t.Errorf("B's list %s", rec.Body)
	}
	wantError(t, e.do("DELETE", "/v1/api/signing-keys/k1", e.keyB, ""), 404, kaiwa.CodeNotFound)
	wantStatus(t, e.do("DELETE", "/v1/api/signing-keys/k1", e.keyA, ""), http.StatusNoContent)
	wantError(t, e.do("DELETE", "/v1/api/signing-keys/k1", e.keyA, ""), 404, kaiwa.CodeNotFound)

	wantStatus(t, e.do("DELETE", "/v1/api/tokens/some-jti", e.keyA, ""), http.StatusNoContent)
	c := e.bus.Controls()
	if last := c[len(c)-1]; last.Kind != kaiwa.ControlTokenIDRevoked || last.ID != "some-jti" || last.Until.IsZero() {
		t.Errorf("last control %+v", last)
	}
	wantError(t, e.do("DELETE", "/v1/api/tokens/"+strings.Repeat("x", 129), e.keyA, ""), 400, kaiwa.CodeBadRequest)
}
