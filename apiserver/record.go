package apiserver

import (
	"encoding/json"

	"github.com/kaiwa-chat/kaiwa"
)

// record appends an event the API caused to the event log, without
// waiting. detail, when not nil, is encoded as the event's detail. An event
// about a user's inbox channel names the user: inboxes are not channels of
// the event log.
func record(rec kaiwa.Recorder, t kaiwa.TenantID, typ, user, ch string, detail map[string]any) {
	if u, ok := kaiwa.InboxUser(ch); ok {
		if detail == nil {
			detail = map[string]any{}
		}
		detail["ch"] = ch
		user, ch = u, ""
	}
	var raw json.RawMessage
	if len(detail) > 0 {
		// A map of strings, numbers and booleans always encodes.
		raw, _ = json.Marshal(detail)
	}
	rec.Record(kaiwa.Event{Tenant: t, Type: typ, User: user, Channel: ch, Detail: raw, TS: kaiwa.Now()})
}
