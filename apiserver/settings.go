package apiserver

import (
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// handleGetSettings returns the tenant's settings, defaults filled in:
// GET /settings. Operators change them with the kaiwa command; every call
// reads them afresh.
func handleGetSettings(tenants kaiwa.TenantStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := tenants.TenantSettings(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		s = s.WithDefaults()
		s.BeforeSend = withoutSecrets(s.BeforeSend)
		return c.JSON(http.StatusOK, settingsJSON(s))
	}
}

// settingsJSON returns every field of s by its JSON name, including those
// [kaiwa.Settings] leaves out when zero (a zero there means "off" or "any"
// once defaults are applied), with empty lists as empty arrays.
func settingsJSON(s kaiwa.Settings) map[string]any {
	v := reflect.ValueOf(s)
	t := v.Type()
	out := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.IsNil() {
			fv = reflect.MakeSlice(fv.Type(), 0, 0)
		}
		out[name] = fv.Interface()
	}
	return out
}
