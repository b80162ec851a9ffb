package ua

import (
	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/versions"
)

// closeTokenID closes the sessions of tenant t that authenticated with the
// signed token whose id is jti (4001, token revoked).
func (s *Server) closeTokenID(t kaiwa.TenantID, jti string) {
	if jti == "" {
		return
	}
	var hit []*session
	s.hub.eachUserRoom(t, func(_ string, sessions []*session) {
		for _, ss := range sessions {
			if ss.id.TokenID == jti {
				hit = append(hit, ss)
			}
		}
	})
	for _, ss := range hit {
		ss.closeWith(StatusUnauthorized, "token revoked", &versions.OutClosing{
			Op: "closing", Code: int(StatusUnauthorized), Reason: "token revoked",
		})
	}
}

// eachUserRoom calls f with each user of tenant t that has sessions here
// and those sessions. A session is in its user's room only once started,
// so its identity is set (entering the room, under the shard lock, comes
// after). f runs under a shard lock: it must not block.
func (h *hub) eachUserRoom(t kaiwa.TenantID, f func(user string, sessions []*session)) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for k, r := range sh.rooms {
			if k.user && k.tenant == t && len(r.members) > 0 {
				f(k.name, r.sessionsLocked())
			}
		}
		sh.mu.Unlock()
	}
}
