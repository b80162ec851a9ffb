package apiserver

import (
	"context"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

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

// check validates a request's policy and entries.
func (r ngRequest) check() error {
	if r.Policy != "" && r.Policy != kaiwa.NGReject && r.Policy != kaiwa.NGMask {
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "policy must be %q or %q", kaiwa.NGReject, kaiwa.NGMask)
	}
	if n := len(r.Words) + len(r.Allow); n > kaiwa.MaxNGWords {
		return kaiwa.Errorf(kaiwa.CodeTooLarge, "%d entries, the limit is %d", n, kaiwa.MaxNGWords)
	}
	for _, list := range []struct {
		name    string
		entries []string
	}{{"words", r.Words}, {"allow", r.Allow}} {
		for i, w := range list.entries {
			if err := checkNGWord(w); err != nil {
				return kaiwa.Errorf(kaiwa.CodeBadRequest, "%s[%d]: %s", list.name, i, kaiwa.ErrorMessage(err))
			}
		}
	}
	return nil
}

// checkNGWord validates one entry of an NG list or its allow-list: valid
// UTF-8, not blank, no control characters, at most [kaiwa.MaxNGWordLen]
// characters.
func checkNGWord(w string) error {
	switch {
	case !utf8.ValidString(w):
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "not valid UTF-8")
	case strings.TrimSpace(w) == "":
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "an entry must not be blank")
	case utf8.RuneCountInString(w) > kaiwa.MaxNGWordLen:
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "an entry is at most %d characters", kaiwa.MaxNGWordLen)
	case strings.IndexFunc(w, unicode.IsControl) >= 0:
		return kaiwa.Errorf(kaiwa.CodeBadRequest, "an entry must not hold control characters")
	}
	return nil
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

// handlePutNGWords replaces the tenant's NG list: PUT /ngwords. words is
// required (an empty array clears the list), so that a body meant for
// POST cannot wipe it.
func handlePutNGWords(ng kaiwa.NGStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body ngRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		if body.Words == nil {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "words is required: it replaces the list ([] clears it); POST /ngwords adds")
		}
		if err := body.check(); err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		l, err := ng.PutNGList(ctx, tenant, kaiwa.NGList{Policy: body.Policy, Words: body.Words, Allow: body.Allow})
		if err != nil {
			return err
		}
		return ngChanged(c, bus, rec, l, map[string]any{"op": "replace"})
	}
}

// handleAddNGWords adds entries to the tenant's NG list and allow-list, or
// sets its policy: POST /ngwords.
func handleAddNGWords(ng kaiwa.NGStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		var body ngRequest
		if err := bind(c, &body); err != nil {
			return err
		}
		if len(body.Words) == 0 && len(body.Allow) == 0 && body.Policy == "" {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "nothing to add: send words, allow or policy")
		}
		if err := body.check(); err != nil {
			return err
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		l, err := ng.AddNGWords(ctx, tenant, kaiwa.NGList{Policy: body.Policy, Words: body.Words, Allow: body.Allow})
		if err != nil {
			return err
		}
		return ngChanged(c, bus, rec, l, map[string]any{"op": "add", "added": len(body.Words) + len(body.Allow)})
	}
}

// handleDeleteNGWord removes one entry from the tenant's NG list or
// allow-list: DELETE /ngwords/{word}, the word percent-encoded as UTF-8.
func handleDeleteNGWord(ng kaiwa.NGStore, bus kaiwa.Publisher, rec kaiwa.Recorder) echo.HandlerFunc {
	return func(c echo.Context) error {
		word, err := pathParam(c, "word")
		if err != nil {
			return err
		}
		if err := checkNGWord(word); err != nil {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "word: %s", kaiwa.ErrorMessage(err))
		}
		ctx, tenant := c.Request().Context(), tenantOf(c)
		l, delErr := ng.DeleteNGWord(ctx, tenant, word)
		if delErr != nil && !kaiwa.IsCode(delErr, kaiwa.CodeNotFound) {
			return delErr
		}
		if delErr != nil {
			// Told to the UAs all the same, so that a retry after a failed
			// publish still reaches them.
			if err := publishNGChange(ctx, bus, tenant); err != nil {
				return err
			}
			return delErr
		}
		return ngChanged(c, bus, rec, l, map[string]any{"op": "delete", "word": word})
	}
}

// ngChanged tells every UA to rebuild the tenant's matcher, records the
// change and answers with the list.
func ngChanged(c echo.Context, bus kaiwa.Publisher, rec kaiwa.Recorder, l kaiwa.NGList, detail map[string]any) error {
	tenant := tenantOf(c)
	detail["policy"] = l.Policy
	detail["words"] = len(l.Words)
	detail["allow"] = len(l.Allow)
	record(rec, tenant, kaiwa.EventNGChanged, "", "", detail)
	if err := publishNGChange(c.Request().Context(), bus, tenant); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ngJSON(l))
}

func publishNGChange(ctx context.Context, bus kaiwa.Publisher, tenant kaiwa.TenantID) error {
	return bus.PublishControl(ctx, kaiwa.Control{Kind: kaiwa.ControlNGWords, Tenant: tenant})
}
