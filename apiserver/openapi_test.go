package apiserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// openAPI is the part of an OpenAPI 3.0 document the tests read.
type openAPI struct {
	OpenAPI  string                                `json:"openapi"`
	Servers  []struct{ URL string }                `json:"servers"`
	Security []map[string][]string                 `json:"security"`
	Paths    map[string]map[string]json.RawMessage `json:"paths"`
}

// openAPIOperation is one operation of the document.
type openAPIOperation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []map[string]any           `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    *[]map[string][]string     `json:"security"`
}

// loadOpenAPI decodes the embedded document, failing the test when it is
// not valid JSON of the expected shape.
func loadOpenAPI(t testing.TB) (openAPI, map[string]any) {
	t.Helper()
	var doc openAPI
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(openAPIDoc, &raw); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc, raw
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPIMatchesRoutes walks the routes the server registered and the
// paths of the document: every route is documented with its method, and
// every documented operation is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	doc, _ := loadOpenAPI(t)
	srv := e.handler.(*echo.Echo)

	routes := map[string]bool{}
	for _, r := range srv.Routes() {
		p, ok := strings.CutPrefix(r.Path, "/v1/api")
		if !ok {
			continue
		}
		routes[r.Method+" "+echoParam.ReplaceAllString(p, "{$1}")] = true
	}
	documented := map[string]bool{}
	for p, methods := range doc.Paths {
		for m := range methods {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	for r := range routes {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !routes[d] {
			t.Errorf("openapi.json documents %s, which is no route", d)
		}
	}
	if len(routes) < 29 {
		t.Errorf("%d routes", len(routes))
	}
}

// TestOpenAPIDocument checks the document itself: its version, that every
// reference resolves, that each operation declares exactly the parameters
// of its path, has a unique id and a success response, and that the
// secured ones document the errors every call may get.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, raw := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/v1/api" {
		t.Errorf("servers %+v", doc.Servers)
	}
	if len(doc.Security) != 1 || doc.Security[0]["apiKey"] == nil {
		t.Errorf("security %v, want the apiKey scheme for every call", doc.Security)
	}
	scheme, _ := lookup(raw, "#/components/securitySchemes/apiKey").(map[string]any)
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
		t.Errorf("security scheme %v", scheme)
	}

	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && lookup(raw, ref) == nil {
				t.Errorf("$ref %s does not resolve", ref)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)

	ids := map[string]bool{}
	for p, methods := range doc.Paths {
		want := echoParam.FindAllString(strings.NewReplacer("{", ":", "}", "").Replace(p), -1)
		for i := range want {
			want[i] = want[i][1:]
		}
		for m, opRaw := range methods {
			where := strings.ToUpper(m) + " " + p
			var op openAPIOperation
			if err := json.Unmarshal(opRaw, &op); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q missing or repeated", where, op.OperationID)
			}
			ids[op.OperationID] = true
			var inPath []string
			for _, param := range op.Parameters {
				if ref, ok := param["$ref"].(string); ok {
					param, _ = lookup(raw, ref).(map[string]any)
				}
				if param["in"] == "path" {
					inPath = append(inPath, param["name"].(string))
					if param["required"] != true {
						t.Errorf("%s: path parameter %v not required", where, param["name"])
					}
				}
			}
			sort.Strings(inPath)
			sorted := slices.Sorted(slices.Values(want))
			if !slices.Equal(inPath, sorted) {
				t.Errorf("%s: path parameters %v, the path has %v", where, inPath, sorted)
			}
			success := false
			for code := range op.Responses {
				success = success || strings.HasPrefix(code, "2")
			}
			if !success {
				t.Errorf("%s: no success response", where)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if public != (p == openAPIPath) {
				t.Errorf("%s: public %v", where, public)
			}
			if !public {
				for _, code := range []string{"401", "429", "500", "503"} {
					if op.Responses[code] == nil {
						t.Errorf("%s: no %s response", where, code)
					}
				}
			}
		}
	}

	// The error codes and the settings are those of the root package.
	enum, _ := lookup(raw, "#/components/schemas/Error/properties/error/properties/code/enum").([]any)
	var codes []string
	for _, c := range enum {
		codes = append(codes, c.(string))
	}
	var want []string
	for _, c := range kaiwa.Codes {
		want = append(want, string(c))
	}
	if slices.Sort(codes); !slices.Equal(codes, slices.Sorted(slices.Values(want))) {
		t.Errorf("error codes %v, want %v", codes, want)
	}
	props, _ := lookup(raw, "#/components/schemas/Settings/properties").(map[string]any)
	settings := settingsJSON(kaiwa.Settings{})
	for name := range settings {
		if props[name] == nil {
			t.Errorf("Settings schema lacks %s", name)
		}
	}
	for name := range props {
		if _, ok := settings[name]; !ok {
			t.Errorf("Settings schema has %s, which GET /settings does not return", name)
		}
	}
}

// lookup resolves a local JSON pointer ("#/a/b") in doc, or returns nil.
func lookup(doc map[string]any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]
	}
	return cur
}

func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	rec := e.do("GET", "/v1/api/openapi.json", "", "")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), openAPIDoc) {
		t.Error("the served v1 document is not the checked-in one")
	}
	// A key is not needed, and a bad one does not matter.
	wantStatus(t, e.do("GET", "/v1/api/openapi.json", "tenantA:bad", ""), http.StatusOK)
	wantError(t, e.do("POST", "/v1/api/openapi.json", "", ""), 405, kaiwa.CodeBadRequest)

	// Another version's document names its own server.
	v2 := newTestEnv(t, withConfig(func(c *Config) { c.Version = "v2" }))
	rec = v2.do("GET", "/v2/api/openapi.json", "", "")
	wantStatus(t, rec, http.StatusOK)
	var doc openAPI
	decode(t, rec, &doc)
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/v2/api" || len(doc.Paths) == 0 {
		t.Errorf("v2 document servers %+v, %d paths", doc.Servers, len(doc.Paths))
	}
	if reflect.DeepEqual(rec.Body.Bytes(), openAPIDoc) {
		t.Error("v2 serves the v1 document")
	}
}
