package kaiwa

import "net/url"

// BeforeSendHook names an endpoint of a tenant's that Kaiwa calls before a
// message is published to a channel whose name starts with Prefix ("*":
// any; "dm:": direct messages). The endpoint answers allow, reject (a
// reason the sender gets) or replace (new text and data); see
// docs/api.md. Calls are signed with Secret as webhooks are.
type BeforeSendHook struct {
	Prefix string `json:"prefix"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// Before-send policies on a hook that does not answer in time (or
// answers nonsense).
const (
	HookFailOpen   = "allow"  // the message goes out unchanged
	HookFailClosed = "reject" // the message is refused (unavailable)
)

// Limits of before-send hooks.
const (
	MaxBeforeSendHooks        = 10
	DefaultBeforeSendBudgetMS = 200
	MaxBeforeSendBudgetMS     = 5000
)

// BeforeSend is a tenant's before-send configuration, as set through the
// API: the hooks (the first whose prefix matches a channel is called), the
// latency budget in milliseconds, and what a timeout means.
type BeforeSend struct {
	Hooks     []BeforeSendHook `json:"hooks"`
	TimeoutMS int              `json:"timeout_ms,omitempty"`
	OnTimeout string           `json:"on_timeout,omitempty"`
}

// Check validates a before-send configuration (its URLs only for their
// form; see [URLChecker]).
func (b BeforeSend) Check() error {
	if len(b.Hooks) > MaxBeforeSendHooks {
		return Errorf(CodeBadRequest, "at most %d before-send hooks", MaxBeforeSendHooks)
	}
	for _, h := range b.Hooks {
		if h.Prefix != "*" && (h.Prefix == "" || len(h.Prefix) > MaxChannelLen || !ValidChannel(h.Prefix)) {
			return Errorf(CodeBadRequest, "invalid hook prefix %q", h.Prefix)
		}
		if u, err := url.Parse(h.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || len(h.URL) > 2000 {
			return Errorf(CodeBadRequest, "invalid hook url %q", h.URL)
		}
		if len(h.Secret) < MinWebhookSecret || len(h.Secret) > MaxWebhookSecret {
			return Errorf(CodeBadRequest, "a hook's secret has %d to %d bytes", MinWebhookSecret, MaxWebhookSecret)
		}
	}
	if b.TimeoutMS < 0 || b.TimeoutMS > MaxBeforeSendBudgetMS {
		return Errorf(CodeBadRequest, "timeout_ms must be between 1 and %d", MaxBeforeSendBudgetMS)
	}
	if b.OnTimeout != "" && b.OnTimeout != HookFailOpen && b.OnTimeout != HookFailClosed {
		return Errorf(CodeBadRequest, "on_timeout must be %q or %q", HookFailOpen, HookFailClosed)
	}
	return nil
}

// Hook returns the hook for channel ch, if any.
func (b BeforeSend) Hook(ch string) (BeforeSendHook, bool) {
	for _, h := range b.Hooks {
		if matchPrefixes([]string{h.Prefix}, ch) {
			return h, true
		}
	}
	return BeforeSendHook{}, false
}
