package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/tenants/ngword"
)

// view is what every page's template sees.
type view struct {
	Lang    string
	Page    string
	Path    string // the page's path and query, for the language switch
	Tenant  kaiwa.TenantID
	CSRF    string
	Notice  string
	Error   *pageError
	Refresh int // seconds; 0 for none
	Data    any
}

// pageError is an error shown on a page.
type pageError struct{ Code, Message string }

// T translates key into the page's language.
func (v *view) T(key string) string { return translate(v.Lang, key) }

// LangURL is the page in language l.
func (v *view) LangURL(l string) string {
	u, err := url.Parse(v.Path)
	if err != nil {
		return "?lang=" + l
	}
	q := u.Query()
	q.Set("lang", l)
	q.Del("done")
	u.RawQuery = q.Encode()
	return u.String()
}

// view starts a page's view: the language (?lang=, else the cookie, else
// Accept-Language), the session's tenant and CSRF token, and the notice
// of a change just made (?done=).
func (c *Console) view(ec echo.Context, s *session, page string) *view {
	req := ec.Request()
	v := &view{Lang: "en", Page: page, Path: req.URL.RequestURI()}
	switch l := req.URL.Query().Get("lang"); {
	case l == "ja" || l == "en":
		v.Lang = l
		c.setCookie(ec, langCookie, l, 365*24*3600)
	default:
		if ck, err := req.Cookie(langCookie); err == nil && (ck.Value == "ja" || ck.Value == "en") {
			v.Lang = ck.Value
		} else if strings.HasPrefix(strings.ToLower(req.Header.Get("Accept-Language")), "ja") {
			v.Lang = "ja"
		}
	}
	if s != nil {
		v.Tenant, v.CSRF = s.Tenant, c.csrf(s)
	}
	if d := req.URL.Query().Get("done"); d != "" && hasKey("done."+d) {
		v.Notice = translate(v.Lang, "done."+d)
	}
	return v
}

// maxFilter bounds a filter's length, in bytes.
const maxFilter = 200

// filter returns query parameter name, refusing one too long.
func filter(ec echo.Context, name string) (string, error) {
	v := strings.TrimSpace(ec.QueryParam(name))
	if len(v) > maxFilter || !utf8.ValidString(v) {
		return "", kaiwa.Errorf(kaiwa.CodeBadRequest, "the filter %q is too long or not text (at most %d bytes)", name, maxFilter)
	}
	return v, nil
}

// formTime parses a time filter: RFC 3339, or a form's
// 2006-01-02T15:04 (UTC).
func formTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil && t.Year() >= 1970 && t.Year() <= 9999 {
			return t, nil
		}
	}
	return time.Time{}, kaiwa.Errorf(kaiwa.CodeBadRequest, "%s: %q is not a time (2025-03-01T12:00, UTC)", name, s)
}

// back returns where a form asked to go after a change: a console page,
// with the notice of what was done.
func back(ec echo.Context, fallback, done string) error {
	to := ec.FormValue("back")
	if !strings.HasPrefix(to, "/console/") || strings.HasPrefix(to, "//") || strings.ContainsAny(to, "\\\r\n") || len(to) > 2000 {
		to = fallback
	}
	u, err := url.Parse(to)
	if err != nil {
		u, _ = url.Parse(fallback)
	}
	q := u.Query()
	q.Set("done", done)
	u.RawQuery = q.Encode()
	return ec.Redirect(http.StatusSeeOther, u.String())
}

func handleIndex() echo.HandlerFunc {
	return func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/console/live") }
}

func handleLoginPage(c *Console) echo.HandlerFunc {
	return func(ec echo.Context) error {
		if ck, err := ec.Request().Cookie(sessionCookie); err == nil {
			if _, err := c.parseSession(ck.Value); err == nil {
				return ec.Redirect(http.StatusSeeOther, "/console/live")
			}
		}
		v := c.view(ec, nil, "login")
		v.CSRF = c.loginToken(ec)
		return c.render(ec, http.StatusOK, "login", v)
	}
}

func handleLogin(c *Console) echo.HandlerFunc { return c.login }

func handleLogout(c *Console) echo.HandlerFunc {
	return func(ec echo.Context) error {
		c.clearCookie(ec, sessionCookie)
		s := sessionOf(ec)
		c.log(ec, "console logout", "tenant", string(s.Tenant), "key_id", s.KeyID)
		return ec.Redirect(http.StatusSeeOther, "/console/login")
	}
}

// liveData is the Live page's.
type liveData struct {
	Stats       *kaiwa.TenantStats
	StatsError  string
	PerSecond   string
	Versions    []string
	Busiest     []kaiwa.ChannelCount
	BusiestFrom time.Duration
}

func handleLive(c *Console, src kaiwa.StatsSource, reads Reads) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		ctx := ec.Request().Context()
		d := liveData{BusiestFrom: 5 * time.Minute}
		if src == nil {
			d.StatsError = "stats are not served by this process"
		} else if st, err := src.TenantStats(ctx, s.Tenant); err != nil {
			d.StatsError = kaiwa.ErrorMessage(err)
		} else {
			d.Stats = &st
			d.PerSecond = strconv.FormatFloat(float64(st.Messages.LastMinute)/60, 'f', 2, 64)
			for v := range st.Sessions.ByVersion {
				d.Versions = append(d.Versions, v)
			}
			slices.Sort(d.Versions)
		}
		busiest, err := reads.BusiestChannels(ctx, s.Tenant, c.now().Add(-d.BusiestFrom), 10)
		if err != nil {
			return err
		}
		d.Busiest = busiest
		v := c.view(ec, s, "live")
		v.Refresh, v.Data = 5, d
		return c.render(ec, http.StatusOK, "live", v)
	}
}

// logsData is the Logs page's.
type logsData struct {
	Kind, Channel, User, Type, Since, Until, Order string
	Limit                                          int
	Messages                                       []kaiwa.Message
	Events                                         []kaiwa.Event
	Next                                           string // the next page's URL
	Back                                           string // this page, for the forms
}

// maxPage bounds a page of the logs.
const maxPage = 200

func handleLogs(c *Console, log kaiwa.MessageLog, events kaiwa.EventLog) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		var d logsData
		var err error
		for _, f := range []struct {
			name string
			to   *string
		}{{"kind", &d.Kind}, {"ch", &d.Channel}, {"user", &d.User}, {"type", &d.Type}, {"since", &d.Since}, {"until", &d.Until}, {"order", &d.Order}} {
			if *f.to, err = filter(ec, f.name); err != nil {
				return err
			}
		}
		after, err := filter(ec, "after")
		if err != nil {
			return err
		}
		before, err := filter(ec, "before")
		if err != nil {
			return err
		}
		if d.Kind != "events" {
			d.Kind = "messages"
		}
		if d.Order != "asc" {
			d.Order = "desc"
		}
		d.Limit = 50
		if l := ec.QueryParam("limit"); l != "" {
			if d.Limit, err = strconv.Atoi(l); err != nil || d.Limit < 1 || d.Limit > maxPage {
				return kaiwa.Errorf(kaiwa.CodeBadRequest, "limit must be a number from 1 to %d", maxPage)
			}
		}
		if d.Channel != "" {
			if err := kaiwa.CheckChannel(d.Channel); err != nil {
				return err
			}
		}
		if d.User != "" {
			if err := kaiwa.CheckID("user", d.User); err != nil {
				return err
			}
		}
		since, err := formTime("since", d.Since)
		if err != nil {
			return err
		}
		until, err := formTime("until", d.Until)
		if err != nil {
			return err
		}
		if !since.IsZero() && !until.IsZero() && until.Before(since) {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "until is before since")
		}
		ctx := ec.Request().Context()
		next := ec.Request().URL.Query()
		next.Del("done")
		d.Back = "/console/logs?" + next.Encode()
		cursor := ""
		if d.Kind == "messages" {
			page, err := log.Messages(ctx, s.Tenant, kaiwa.MessageQuery{
				Channel: d.Channel, User: d.User, Since: since, Until: until, Limit: d.Limit,
				Desc: d.Order == "desc", After: after, Before: before,
			})
			if err != nil {
				return err
			}
			d.Messages, cursor = page.Messages, page.Next
			next.Del("after")
			next.Del("before")
			if cursor != "" {
				if d.Order == "desc" {
					next.Set("before", cursor)
				} else {
					next.Set("after", cursor)
				}
			}
		} else {
			page, err := events.Events(ctx, s.Tenant, kaiwa.EventQuery{
				Type: d.Type, User: d.User, Channel: d.Channel, Since: since, Until: until, Limit: d.Limit, Before: before,
			})
			if err != nil {
				return err
			}
			d.Events, cursor = page.Events, page.Next
			next.Del("before")
			if cursor != "" {
				next.Set("before", cursor)
			}
		}
		if cursor != "" {
			d.Next = "/console/logs?" + next.Encode()
		}
		v := c.view(ec, s, "logs")
		v.Data = d
		return c.render(ec, http.StatusOK, "logs", v)
	}
}

func handleDeleteMessage(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		if err := core.DeleteMessage(ec.Request().Context(), s.actor(), s.Tenant, ec.FormValue("ch"), ec.FormValue("id")); err != nil {
			return err
		}
		return back(ec, "/console/logs", "deleted")
	}
}

// userData is the User page's.
type userData struct {
	User      string
	Sanctions []kaiwa.Sanction
	Messages  []kaiwa.Message
	Events    []kaiwa.Event
	Back      string
}

func handleUser(c *Console, log kaiwa.MessageLog, events kaiwa.EventLog, sanctions kaiwa.ModerationStore) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		user := ec.Param("user")
		if err := kaiwa.CheckID("user", user); err != nil {
			return err
		}
		ctx := ec.Request().Context()
		d := userData{User: user, Back: "/console/users/" + url.PathEscape(user)}
		var err error
		if d.Sanctions, err = sanctions.Sanctions(ctx, s.Tenant, user); err != nil {
			return err
		}
		mp, err := log.Messages(ctx, s.Tenant, kaiwa.MessageQuery{User: user, Desc: true, Limit: 20})
		if err != nil {
			return err
		}
		ep, err := events.Events(ctx, s.Tenant, kaiwa.EventQuery{User: user, Limit: 20})
		if err != nil {
			return err
		}
		d.Messages, d.Events = mp.Messages, ep.Events
		v := c.view(ec, s, "user")
		v.Data = d
		return c.render(ec, http.StatusOK, "user", v)
	}
}

// userPage is where a change to a user goes back to.
func userPage(ec echo.Context) string { return "/console/users/" + url.PathEscape(ec.Param("user")) }

func handleKick(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		if err := core.Kick(ec.Request().Context(), s.actor(), s.Tenant, ec.Param("user"), ec.FormValue("reason")); err != nil {
			return err
		}
		return back(ec, userPage(ec), "kicked")
	}
}

// handleSanction bans or mutes a user: kind ban or mute, minutes (0 or
// absent: until lifted), reason.
func handleSanction(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		kind := kaiwa.SanctionKind(ec.FormValue("kind"))
		if kind != kaiwa.SanctionBan && kind != kaiwa.SanctionMute {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "kind must be ban or mute")
		}
		var until time.Time
		if m := ec.FormValue("minutes"); m != "" && m != "0" {
			n, err := strconv.Atoi(m)
			if err != nil || n < 1 || n > 365*24*60 {
				return kaiwa.Errorf(kaiwa.CodeBadRequest, "the duration must be 1 to %d minutes, or until lifted", 365*24*60)
			}
			until = time.Now().Add(time.Duration(n) * time.Minute)
		}
		if _, err := core.Sanction(ec.Request().Context(), s.actor(), kaiwa.Sanction{
			Tenant: s.Tenant, User: ec.Param("user"), Kind: kind, Until: until, Reason: ec.FormValue("reason"),
		}); err != nil {
			return err
		}
		return back(ec, userPage(ec), map[kaiwa.SanctionKind]string{kaiwa.SanctionBan: "banned", kaiwa.SanctionMute: "muted"}[kind])
	}
}

// handleLift lifts a user's ban or mute (kind).
func handleLift(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		kind := kaiwa.SanctionKind(ec.FormValue("kind"))
		if kind != kaiwa.SanctionBan && kind != kaiwa.SanctionMute {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "kind must be ban or mute")
		}
		if err := core.Lift(ec.Request().Context(), s.actor(), s.Tenant, ec.Param("user"), kind); err != nil {
			return err
		}
		return back(ec, userPage(ec), map[kaiwa.SanctionKind]string{kaiwa.SanctionBan: "unbanned", kaiwa.SanctionMute: "unmuted"}[kind])
	}
}

// ngData is the NG words page's.
type ngData struct {
	List kaiwa.NGList
	Try  *tryResult
}

// tryResult is what the NG list would do to a sentence.
type tryResult struct {
	Sentence, Folded, Out string
	Policy                string
	Hit, Rejected         bool
	Matches               []ngMatch
	Error                 string
}

// ngMatch is a part of the sentence that matched, and the entries it
// matched, each with its folded form.
type ngMatch struct {
	Text, Folded string
	Words        [][2]string
}

func handleNGWords(c *Console, ng kaiwa.NGStore) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		sentence, err := filter(ec, "try")
		if err != nil {
			return err
		}
		list, err := ng.NGList(ec.Request().Context(), s.Tenant)
		if err != nil {
			return err
		}
		d := ngData{List: list}
		if sentence != "" {
			d.Try = try(list, sentence)
		}
		v := c.view(ec, s, "ngwords")
		v.Data = d
		return c.render(ec, http.StatusOK, "ngwords", v)
	}
}

// try applies the list to a sentence as a UA would, and says which
// entries matched where.
func try(list kaiwa.NGList, sentence string) *tryResult {
	r := &tryResult{Sentence: sentence, Folded: ngword.Normalize(sentence), Policy: list.Policy, Out: sentence}
	if r.Policy == "" {
		r.Policy = kaiwa.NGReject
	}
	m, err := ngword.Compile(list.Words, list.Allow)
	if err != nil {
		r.Error = kaiwa.ErrorMessage(err)
		return r
	}
	out, hit, err := m.Apply(sentence, r.Policy)
	r.Hit, r.Rejected = hit, err != nil
	if hit && err == nil {
		r.Out = out
	}
	for _, sp := range m.Find(sentence) {
		part := sentence[sp.Start:sp.End]
		folded := ngword.Normalize(part)
		match := ngMatch{Text: part, Folded: folded}
		for _, w := range list.Words {
			if fw := ngword.Normalize(w); fw != "" && strings.Contains(folded, fw) {
				match.Words = append(match.Words, [2]string{w, fw})
			}
		}
		r.Matches = append(r.Matches, match)
	}
	return r
}

func handleNGAdd(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		var entries []string
		for _, line := range strings.Split(ec.FormValue("words"), "\n") {
			if w := strings.TrimSpace(line); w != "" {
				entries = append(entries, w)
			}
		}
		if len(entries) == 0 {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "no word to add: one entry a line")
		}
		l := kaiwa.NGList{Words: entries}
		if ec.FormValue("list") == "allow" {
			l = kaiwa.NGList{Allow: entries}
		}
		if _, err := core.AddNGWords(ec.Request().Context(), s.actor(), s.Tenant, l); err != nil {
			return err
		}
		return back(ec, "/console/ngwords", "ng_added")
	}
}

func handleNGRemove(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		if _, err := core.DeleteNGWord(ec.Request().Context(), s.actor(), s.Tenant, ec.FormValue("word")); err != nil {
			return err
		}
		return back(ec, "/console/ngwords", "ng_removed")
	}
}

func handleNGPolicy(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		p := ec.FormValue("policy")
		if p != kaiwa.NGReject && p != kaiwa.NGMask {
			return kaiwa.Errorf(kaiwa.CodeBadRequest, "policy must be %q or %q", kaiwa.NGReject, kaiwa.NGMask)
		}
		if _, err := core.AddNGWords(ec.Request().Context(), s.actor(), s.Tenant, kaiwa.NGList{Policy: p}); err != nil {
			return err
		}
		return back(ec, "/console/ngwords", "ng_policy")
	}
}

// channelRow is one line of the Channels page.
type channelRow struct {
	kaiwa.Channel
	Members int
}

func handleChannels(c *Console, channels kaiwa.ChannelStore, reads Reads) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		ctx := ec.Request().Context()
		list, err := channels.Channels(ctx, s.Tenant, "")
		if err != nil {
			return err
		}
		counts, err := reads.MemberCounts(ctx, s.Tenant)
		if err != nil {
			return err
		}
		rows := make([]channelRow, len(list))
		for i, ch := range list {
			rows[i] = channelRow{ch, counts[ch.Name]}
		}
		v := c.view(ec, s, "channels")
		v.Data = rows
		return c.render(ec, http.StatusOK, "channels", v)
	}
}

func handleCreateChannel(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		if _, _, err := core.PutChannel(ec.Request().Context(), s.actor(), kaiwa.Channel{
			Tenant: s.Tenant, Name: strings.TrimSpace(ec.FormValue("name")),
			Kind: kaiwa.ChannelKind(ec.FormValue("kind")), Title: ec.FormValue("title"),
		}); err != nil {
			return err
		}
		return back(ec, "/console/channels", "channel_saved")
	}
}

func handleDeleteChannel(core *kaiwa.Core) echo.HandlerFunc {
	return func(ec echo.Context) error {
		s := sessionOf(ec)
		if err := core.DeleteChannel(ec.Request().Context(), s.actor(), s.Tenant, ec.FormValue("name")); err != nil {
			return err
		}
		return back(ec, "/console/channels", "channel_deleted")
	}
}
