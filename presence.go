package kaiwa

// PresenceUser is a user online in a channel.
type PresenceUser struct {
	User string `json:"user"`
	Name string `json:"name"`
}

// ChannelPresence is who is online in a channel, across every UA: Count
// users, listed in Users (by id) unless there are more than the tenant's
// presence limit (then Users is nil and only Count is known).
type ChannelPresence struct {
	Channel string         `json:"ch"`
	Count   int            `json:"count"`
	Users   []PresenceUser `json:"users,omitempty"`
}

// UserPresence says whether a user has live sessions, and how many,
// across every UA.
type UserPresence struct {
	User     string `json:"user"`
	Online   bool   `json:"online"`
	Sessions int    `json:"sessions"`
}

// PresenceAnswer is one UA's answer to a presence question: the users of
// a channel it has sessions of, or the number of a user's sessions it
// holds.
type PresenceAnswer struct {
	Users    []PresenceUser `json:"users,omitempty"`
	Sessions int            `json:"sessions,omitempty"`
}
