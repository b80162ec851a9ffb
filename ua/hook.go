package ua

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kaiwa-chat/kaiwa"
)

// hookMetrics is the before-send hook's latency, by tenant and outcome
// (allow, reject, replace, timeout, error).
type hookMetrics struct {
	latency *prometheus.HistogramVec
}

func newHookMetrics(reg *prometheus.Registry) *hookMetrics {
	m := &hookMetrics{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kaiwa_ua_before_send_seconds",
		Help:    "Latency of the tenants' before-send hooks, by tenant and outcome (allow, reject, replace, timeout, error).",
		Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, 1, 2, 5},
	}, []string{"tenant", "outcome"})}
	reg.MustRegister(m.latency)
	return m
}

// hookCall is the body of a before-send call.
type hookCall struct {
	Type    string          `json:"type"`
	Tenant  kaiwa.TenantID  `json:"tenant"`
	Channel string          `json:"ch"`
	From    string          `json:"from"`
	Name    string          `json:"name"`
	Text    string          `json:"text"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      int64           `json:"ts"`
}

// hookAnswer is what the endpoint answers: action "allow", "reject"
// (reason: what the sender is told) or "replace" (text and data, when
// given, replace the message's; data null removes it).
type hookAnswer struct {
	Action string          `json:"action"`
	Reason string          `json:"reason"`
	Text   *string         `json:"text"`
	Data   json.RawMessage `json:"data"`
}

// errHookAnswer is an answer the UA cannot use.
var errHookAnswer = errors.New("ua: before-send hook answered nonsense")

// beforeSend calls the tenant's before-send hook for a message to ch, if
// one matches, within the tenant's budget, and returns the text and data
// to publish. A hook that does not answer in time, or fails, lets the
// message through or refuses it (unavailable) by the tenant's policy.
func (ss *session) beforeSend(ctx context.Context, ch, text string, data json.RawMessage, now time.Time) (string, json.RawMessage, error) {
	st := ss.settings()
	hook, ok := st.BeforeSend.Hook(ch)
	if !ok {
		return text, data, nil
	}
	budget := time.Duration(st.BeforeSend.TimeoutMS) * time.Millisecond
	if budget <= 0 {
		budget = kaiwa.DefaultBeforeSendBudgetMS * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	start := time.Now()
	ans, err := ss.srv.callHook(ctx, hook, hookCall{
		Type: "before_send", Tenant: ss.id.Tenant, Channel: ch, From: ss.id.User, Name: ss.id.Name,
		Text: text, Data: data, TS: now.UnixMilli(),
	})
	outcome := ans.Action
	if err != nil {
		outcome = "error"
		if ctx.Err() != nil {
			outcome = "timeout"
		}
	}
	ss.srv.hookMet.latency.WithLabelValues(string(ss.id.Tenant), outcome).Observe(time.Since(start).Seconds())
	if err != nil {
		if st.BeforeSend.OnTimeout == kaiwa.HookFailClosed {
			return "", nil, kaiwa.Errorf(kaiwa.CodeUnavailable, "the game server's check did not answer; try again")
		}
		ss.srv.log.Warn("before-send hook failed, message let through", "tenant", ss.id.Tenant, "outcome", outcome, "err", err)
		return text, data, nil
	}
	switch ans.Action {
	case "reject":
		reason := ans.Reason
		if reason == "" {
			reason = "refused by the game server"
		}
		return "", nil, kaiwa.Errorf(kaiwa.CodeRejected, "%s", reason)
	case "replace":
		if ans.Text != nil {
			text = *ans.Text
		}
		if ans.Data != nil {
			data = ans.Data
			if bytes.Equal(data, []byte("null")) {
				data = nil
			}
		}
		if err := kaiwa.CheckContent(text, data, st); err != nil {
			return "", nil, err
		}
	}
	return text, data, nil
}

// callHook posts c to hook, signed as webhooks are, and decodes the
// answer.
func (s *Server) callHook(ctx context.Context, hook kaiwa.BeforeSendHook, c hookCall) (hookAnswer, error) {
	if s.cfg.HookClient == nil {
		return hookAnswer{}, errors.New("ua: no client for hooks configured")
	}
	body, err := json.Marshal(c)
	if err != nil {
		return hookAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return hookAnswer{}, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Kaiwa-Hook/1")
	req.Header.Set("Kaiwa-Event", "before_send")
	req.Header.Set("Kaiwa-Timestamp", ts)
	req.Header.Set("Kaiwa-Signature", kaiwa.SignWebhook(hook.Secret, ts, body))
	resp, err := s.cfg.HookClient.Do(req)
	if err != nil {
		return hookAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return hookAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return hookAnswer{}, fmt.Errorf("%w: status %d", errHookAnswer, resp.StatusCode)
	}
	var a hookAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return hookAnswer{}, fmt.Errorf("%w: %v", errHookAnswer, err)
	}
	switch a.Action {
	case "allow", "reject", "replace":
	default:
		return hookAnswer{}, fmt.Errorf("%w: action %q", errHookAnswer, a.Action)
	}
	if len(a.Reason) > kaiwa.MaxReasonLen || !utf8.ValidString(a.Reason) {
		a.Reason = a.Reason[:0]
	}
	return a, nil
}
