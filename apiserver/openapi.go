package apiserver

import (
	"bytes"
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.0 description of the tenant API, written by
// hand and checked in; a test keeps it and the routes in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIServer is the server URL of the embedded document.
const openAPIServer = `"url": "/v1/api"`

// openAPIFor returns the document for the API served under "/" + version +
// "/api": the embedded one, with the version's URL as its server URL. It
// panics when the embedded document does not name its server URL once, a
// build mistake the tests catch.
func openAPIFor(version string) []byte {
	if bytes.Count(openAPIDoc, []byte(openAPIServer)) != 1 {
		panic("apiserver: openapi.json must name its server URL once as " + openAPIServer)
	}
	return bytes.Replace(openAPIDoc, []byte(openAPIServer), []byte(`"url": "/`+version+`/api"`), 1)
}

// handleOpenAPI serves the API's OpenAPI document: GET /openapi.json, the
// one versioned call that needs no key.
func handleOpenAPI(doc []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, doc)
	}
}
