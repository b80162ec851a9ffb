package apiserver

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/kaiwa-chat/kaiwa"
)

func TestGetSettings(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	rec := e.do("GET", "/v1/api/settings", e.keyA, "")
	wantStatus(t, rec, http.StatusOK)
	var got map[string]any
	decode(t, rec, &got)
	// Every field, by its JSON name, defaults filled in; zero and empty
	// ones too.
	typ := reflect.TypeFor[kaiwa.Settings]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if _, ok := got[name]; !ok {
			t.Errorf("settings lack %q: %v", name, got)
		}
	}
	if len(got) != typ.NumField() {
		t.Errorf("%d settings, kaiwa.Settings has %d fields", len(got), typ.NumField())
	}
	d := kaiwa.DefaultSettings()
	if got["max_text_len"] != float64(d.MaxTextLen) || got["api_rate"] != d.APIRate || got["ng_policy"] != "reject" ||
		got["ng_escalate_hits"] != float64(0) || !reflect.DeepEqual(got["allowed_versions"], []any{}) {
		t.Errorf("default settings %v", got)
	}

	// Read live: a change shows at once.
	e.setSettings(e.tenantA, kaiwa.Settings{MaxTextLen: 200, AllowedVersions: []string{"v2"}, NGPolicy: kaiwa.NGMask})
	decode(t, e.do("GET", "/v1/api/settings", e.keyA, ""), &got)
	if got["max_text_len"] != float64(200) || got["ng_policy"] != "mask" || !reflect.DeepEqual(got["allowed_versions"], []any{"v2"}) ||
		got["max_data_bytes"] != float64(d.MaxDataBytes) {
		t.Errorf("changed settings %v", got)
	}
	// Another tenant's are its own.
	decode(t, e.do("GET", "/v1/api/settings", e.keyB, ""), &got)
	if got["max_text_len"] != float64(d.MaxTextLen) {
		t.Errorf("tenant B's settings %v", got)
	}

	e.store.fail(failSettings, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"))
	wantError(t, e.do("GET", "/v1/api/settings", e.keyA, ""), 503, kaiwa.CodeUnavailable)
}
