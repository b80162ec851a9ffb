package apiserver

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// ngRequest is the body of PUT and POST /ngwords.
type ngRequest struct {
	Policy string   `json:"policy"`
	Words  []string `json:"words"`
	Allow  []string `json:"allow"`
}

// ngResponse answers every NG-list call with the tenant's list.
type ngResponse struct {
	Policy string   `json:"policy"`
	Words  []string `json:"words"`
	Allow  []string `json:"allow"`
}

func ngJSON(l kaiwa.NGList) ngResponse {
	out := ngResponse{Policy: l.Policy, Words: l.Words, Allow: l.Allow}
	if out.Words == nil {
		out.Words = []string{}
	}
	if out.Allow == nil {
		out.Allow = []string{}
	}
	return out
}

// list returns the request as an NG list.
func (r ngRequest) list() kaiwa.NGList {
	return kaiwa.NGList{Policy: r.Policy, Words: r.Words, Allow: r.Allow}
}

// handleGetNGWords returns the tenant's NG list: GET /ngwords.
func handleGetNGWords(ng kaiwa.NGStore) echo.HandlerFunc {
	return func(c echo.Context) error {
		l, err := ng.NGList(c.Request().Context(), tenantOf(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ngJSON(l))
	}
}

// handlePutNGWords replaces the tenant's NG list ([kaiwa.Core.PutNGList]):
// PUT /ngwords. words is required (an empty array clears the list), so
// that a body meant for POST cannot wipe it.
func handlePutNGWords(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body ngRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		if body.Words == nil {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "words is required: it replaces the list ([] clears it); POST /ngwords adds")
		}
		l, err := core.PutNGList(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), body.list())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ngJSON(l))
	}
}

// handleAddNGWords adds entries to the tenant's NG list and allow-list, or
// sets its policy ([kaiwa.Core.AddNGWords]): POST /ngwords.
func handleAddNGWords(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body ngRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		l, err := core.AddNGWords(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), body.list())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ngJSON(l))
	}
}

// handleDeleteNGWord removes one entry from the tenant's NG list or
// allow-list ([kaiwa.Core.DeleteNGWord]): DELETE /ngwords/{word}, the word
// percent-encoded as UTF-8.
func handleDeleteNGWord(core *kaiwa.Core) echo.HandlerFunc {
	return func(c echo.Context) error {
		word, err := pathParam(c, "word")
		if err != nil {
			return err
		}
		l, err := core.DeleteNGWord(c.Request().Context(), kaiwa.ActorAPI, tenantOf(c), word)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, ngJSON(l))
	}
}
