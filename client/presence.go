package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kaiwa-chat/kaiwa"
)

// Presence asks who is online in joined channel ch, across every UA: the
// users by id, or only their count when the channel has more than the
// title's presence limit.
func (c *Conn) Presence(ctx context.Context, ch string) (kaiwa.ChannelPresence, error) {
	r, err := c.request(ctx, outOp{Op: "presence", Ch: ch}, nil, "ok")
	if err != nil {
		return kaiwa.ChannelPresence{}, err
	}
	var p kaiwa.ChannelPresence
	if err := json.Unmarshal(r.Raw, &p); err != nil {
		return p, fmt.Errorf("client: presence reply: %w", err)
	}
	return p, nil
}
