package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
)

// Keys authenticates the operators' API keys.
type Keys interface {
	// AuthenticateKeyID returns the tenant and the id of an API key, or a
	// [kaiwa.CodeUnauthorized] error.
	AuthenticateKeyID(ctx context.Context, apiKey string) (kaiwa.TenantID, int64, error)
	// KeyActive returns nil while the key is active and its tenant
	// enabled.
	KeyActive(ctx context.Context, t kaiwa.TenantID, keyID int64) error
}

// Reads are the figures the Live and Channels pages show beyond the
// stores' own.
type Reads interface {
	// BusiestChannels returns the channels with the most messages since
	// since, busiest first.
	BusiestChannels(ctx context.Context, t kaiwa.TenantID, since time.Time, limit int) ([]kaiwa.ChannelCount, error)
	// MemberCounts returns each channel's member count.
	MemberCounts(ctx context.Context, t kaiwa.TenantID) (map[string]int, error)
}

// Config holds the console's dependencies. Core, Keys, Reads and the
// stores are required.
type Config struct {
	// Core makes every change an operator asks for.
	Core      *kaiwa.Core
	Keys      Keys
	Reads     Reads
	Channels  kaiwa.ChannelStore
	Log       kaiwa.MessageLog
	Events    kaiwa.EventLog
	NG        kaiwa.NGStore
	Sanctions kaiwa.ModerationStore
	// Stats gathers the Live page's figures; nil shows none.
	Stats kaiwa.StatsSource
	// Secret signs the session cookies and CSRF tokens. Every API process
	// that serves the console must have the same one (at least 32 bytes);
	// empty means a random one, so that sessions end when the process
	// does.
	Secret []byte
	// SessionTTL is how long a login lasts. Default 12h.
	SessionTTL time.Duration
	// Timeout bounds each page's work. Default 5s.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Console serves the console. It is safe for concurrent use.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	e     *echo.Echo
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// MinSecret is the shortest console secret accepted.
const MinSecret = 32

// New returns the console described by cfg. It panics when a required
// dependency is missing or the secret is too short: wiring mistakes.
func New(cfg Config) *Console {
	switch {
	case cfg.Core == nil || cfg.Keys == nil || cfg.Reads == nil || cfg.Channels == nil || cfg.Log == nil ||
		cfg.Events == nil || cfg.NG == nil || cfg.Sanctions == nil:
		panic("console: a required dependency is nil")
	case len(cfg.Secret) == 0:
		cfg.Secret = make([]byte, MinSecret)
		_, _ = rand.Read(cfg.Secret)
	case len(cfg.Secret) < MinSecret:
		panic(fmt.Sprintf("console: the secret must be at least %d bytes", MinSecret))
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, pages: parsePages()}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = c.errorPage
	addRoutes(e, c)
	c.e = e
	return c
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.e.ServeHTTP(w, r) }

func (c *Console) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now()
	}
	return time.Now()
}

// Cookie names and the context key of the session.
const (
	sessionCookie = "kaiwa_console"
	loginCookie   = "kaiwa_console_login"
	langCookie    = "kaiwa_console_lang"
	sessionKey    = "console.session"
	cookiePath    = "/console/"
)

// session is what the session cookie holds, signed.
type session struct {
	Tenant kaiwa.TenantID `json:"t"`
	KeyID  int64          `json:"k"`
	Expiry int64          `json:"e"` // unix seconds
	// raw is the cookie's signed payload, the CSRF token's base.
	raw string
}

// actor names the operator in the event log.
func (s *session) actor() string { return "console:" + strconv.FormatInt(s.KeyID, 10) }

func (c *Console) sign(kind, payload string) string {
	m := hmac.New(sha256.New, c.cfg.Secret)
	m.Write([]byte(kind + "|" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookieValue returns the signed cookie of s.
func (c *Console) cookieValue(s session) string {
	data, _ := json.Marshal(s)
	payload := base64.RawURLEncoding.EncodeToString(data)
	return payload + "." + c.sign("session", payload)
}

// errSession is a missing, forged or expired session.
var errSession = kaiwa.Errorf(kaiwa.CodeUnauthorized, "no valid console session: log in again")

// parseSession checks a session cookie's signature and expiry.
func (c *Console) parseSession(v string) (*session, error) {
	payload, sig, ok := strings.Cut(v, ".")
	if !ok || len(v) > 512 || !hmac.Equal([]byte(sig), []byte(c.sign("session", payload))) {
		return nil, errSession
	}
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errSession
	}
	var s session
	if json.Unmarshal(data, &s) != nil || !kaiwa.ValidID(string(s.Tenant)) || c.now().Unix() >= s.Expiry {
		return nil, errSession
	}
	s.raw = payload
	return &s, nil
}

// csrf returns the session's CSRF token.
func (c *Console) csrf(s *session) string { return c.sign("csrf", s.raw) }

// requireSession authenticates the session cookie: a page without one
// sends the browser to the login page; a change without one, or with a
// session whose key was revoked, is refused. A change must also carry the
// session's CSRF token and come from this host.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		req := ec.Request()
		ck, err := req.Cookie(sessionCookie)
		if err != nil {
			if req.Method == http.MethodGet {
				return ec.Redirect(http.StatusSeeOther, "/console/login")
			}
			return errSession
		}
		s, err := c.parseSession(ck.Value)
		if err != nil {
			c.clearCookie(ec, sessionCookie)
			return err
		}
		ctx, cancel := context.WithTimeout(req.Context(), c.cfg.Timeout)
		defer cancel()
		ec.SetRequest(req.WithContext(ctx))
		if err := c.cfg.Keys.KeyActive(ctx, s.Tenant, s.KeyID); err != nil {
			if kaiwa.IsCode(err, kaiwa.CodeUnauthorized) {
				c.clearCookie(ec, sessionCookie)
				return errSession
			}
			return err
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			if err := c.checkForm(ec, c.csrf(s)); err != nil {
				return err
			}
		}
		ec.Set(sessionKey, s)
		return next(ec)
	}
}

// checkForm refuses a change whose CSRF token is not want, or whose
// Origin is another host.
func (c *Console) checkForm(ec echo.Context, want string) error {
	req := ec.Request()
	if o := req.Header.Get("Origin"); o != "" {
		// nginx passes the host without its port ($host).
		u, err := url.Parse(o)
		host := req.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if err != nil || u.Hostname() != host {
			return kaiwa.Errorf(kaiwa.CodeForbidden, "this form was sent from another site (%s); nothing was changed", o)
		}
	}
	req.Body = http.MaxBytesReader(ec.Response(), req.Body, 64<<10)
	got := ec.FormValue("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return kaiwa.Errorf(kaiwa.CodeForbidden, "the form's security token is missing or wrong (reload the page and try again); nothing was changed")
	}
	return nil
}

// sessionOf returns the authenticated session.
func sessionOf(ec echo.Context) *session {
	s, ok := ec.Get(sessionKey).(*session)
	if !ok {
		panic("console: route " + ec.Path() + " has no session")
	}
	return s
}

func (c *Console) setCookie(ec echo.Context, name, value string, maxAge int) {
	req := ec.Request()
	http.SetCookie(ec.Response(), &http.Cookie{
		Name: name, Value: value, Path: cookiePath, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   req.TLS != nil || strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https"),
	})
}

func (c *Console) clearCookie(ec echo.Context, name string) { c.setCookie(ec, name, "", -1) }

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login checks an API key and starts a session.
func (c *Console) login(ec echo.Context) error {
	req := ec.Request()
	ck, err := req.Cookie(loginCookie)
	if err != nil || ck.Value == "" {
		return kaiwa.Errorf(kaiwa.CodeForbidden, "the login form has expired (or cookies are off): reload it and try again")
	}
	if err := c.checkForm(ec, ck.Value); err != nil {
		return err
	}
	key := strings.TrimSpace(ec.FormValue("key"))
	if _, ok := kaiwa.CredentialTenant(key); !ok || len(key) > 256 {
		return kaiwa.Errorf(kaiwa.CodeUnauthorized, "that is not an API key of a Kaiwa tenant")
	}
	ctx, cancel := context.WithTimeout(req.Context(), c.cfg.Timeout)
	defer cancel()
	t, id, err := c.cfg.Keys.AuthenticateKeyID(ctx, key)
	if err != nil {
		if kaiwa.IsCode(err, kaiwa.CodeUnauthorized) || kaiwa.IsCode(err, kaiwa.CodeNotFound) {
			c.log(ec, "console login refused", "tenant", string(t))
			return kaiwa.Errorf(kaiwa.CodeUnauthorized, "unknown or revoked API key")
		}
		return err
	}
	s := session{Tenant: t, KeyID: id, Expiry: c.now().Add(c.cfg.SessionTTL).Unix()}
	c.setCookie(ec, sessionCookie, c.cookieValue(s), int(c.cfg.SessionTTL/time.Second))
	c.clearCookie(ec, loginCookie)
	c.log(ec, "console login", "tenant", string(t), "key_id", id)
	return ec.Redirect(http.StatusSeeOther, "/console/live")
}

// log writes an info line with the request id, never a credential.
func (c *Console) log(ec echo.Context, msg string, attrs ...any) {
	if id := ec.Request().Header.Get("X-Request-ID"); id != "" {
		attrs = append(attrs, "request_id", id)
	}
	c.cfg.Logger.InfoContext(ec.Request().Context(), msg, attrs...)
}

// statusOf maps an error code to the status a page answers with.
func statusOf(code kaiwa.Code) int {
	switch code {
	case kaiwa.CodeBadRequest, kaiwa.CodeNGWord:
		return http.StatusBadRequest
	case kaiwa.CodeUnauthorized:
		return http.StatusUnauthorized
	case kaiwa.CodeForbidden:
		return http.StatusForbidden
	case kaiwa.CodeNotFound:
		return http.StatusNotFound
	case kaiwa.CodeConflict:
		return http.StatusConflict
	case kaiwa.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case kaiwa.CodeRateLimited:
		return http.StatusTooManyRequests
	case kaiwa.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorPage answers an error with a page saying what went wrong.
func (c *Console) errorPage(err error, ec echo.Context) {
	if ec.Response().Committed {
		return
	}
	code, msg := kaiwa.ErrorCode(err), kaiwa.ErrorMessage(err)
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he) && !errors.As(err, new(*kaiwa.Error)):
		code, msg = kaiwa.CodeBadRequest, http.StatusText(he.Code)
		if he.Code == http.StatusNotFound {
			code, msg = kaiwa.CodeNotFound, "no such page"
		}
		if he.Code == http.StatusRequestEntityTooLarge {
			code, msg = kaiwa.CodeTooLarge, "the form is too large"
		}
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = kaiwa.CodeUnavailable, "the page took too long; try again"
	}
	s, _ := ec.Get(sessionKey).(*session)
	if code == kaiwa.CodeInternal {
		attrs := []any{"path", ec.Request().URL.Path, "request_id", ec.Request().Header.Get("X-Request-ID"), "err", err}
		if s != nil {
			attrs = append(attrs, "tenant", string(s.Tenant))
		}
		c.cfg.Logger.ErrorContext(ec.Request().Context(), "console: internal error", attrs...)
	}
	v := c.view(ec, s, "")
	v.Error = &pageError{Code: string(code), Message: msg}
	page := "error"
	if code == kaiwa.CodeUnauthorized {
		page = "login"
		v.CSRF = c.loginToken(ec)
	}
	_ = c.render(ec, statusOf(code), page, v)
}

// loginToken sets a fresh login CSRF cookie and returns its token.
func (c *Console) loginToken(ec echo.Context) string {
	tok := randomToken()
	c.setCookie(ec, loginCookie, tok, 3600)
	return tok
}

// parsePages parses each page with the layout.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		pages[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return pages
}

// render writes page with v.
func (c *Console) render(ec echo.Context, status int, page string, v *view) error {
	h := ec.Response().Header()
	h.Set(echo.HeaderContentType, "text/html; charset=utf-8")
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	ec.Response().WriteHeader(status)
	return c.pages[page].Execute(ec.Response(), v)
}

// handleStatic serves the embedded stylesheet.
func handleStatic() echo.HandlerFunc {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/console/static/", http.FileServer(http.FS(sub)))
	return func(ec echo.Context) error {
		ec.Response().Header().Set(echo.HeaderCacheControl, "no-cache")
		files.ServeHTTP(ec.Response(), ec.Request())
		return nil
	}
}
