package kaiwa

import (
	"context"
	"time"
)

// IssueToken issues a token for a user of tenant t ([TokenRequest.Check]ed;
// the display name defaults to the user id). No event is recorded: a game
// server asks for one at every login, and the log would hold little else.
func (c *Core) IssueToken(ctx context.Context, actor string, t TenantID, req TokenRequest) (IssuedToken, error) {
	if err := checkActor(actor); err != nil {
		return IssuedToken{}, err
	}
	if req.Name == "" {
		req.Name = req.User
	}
	if err := req.Check(); err != nil {
		return IssuedToken{}, err
	}
	return c.Tokens.IssueToken(ctx, t, req)
}

// RevokeTokens revokes every token of a user and closes the user's live
// sessions ([ControlTokensRevoked], published also when no token was
// left, so that a retry after a failed publish still closes them). Signed
// tokens of the user issued before now are refused too (the control's
// Until). It returns how many registered tokens it revoked. Event:
// token_revoked (detail.tokens).
func (c *Core) RevokeTokens(ctx context.Context, actor string, t TenantID, user string) (int, error) {
	if err := checkActor(actor); err != nil {
		return 0, err
	}
	if err := CheckID("user", user); err != nil {
		return 0, err
	}
	n, err := c.Tokens.RevokeTokens(ctx, t, user)
	if err != nil {
		return 0, err
	}
	now := c.now().UTC().Truncate(time.Millisecond)
	if err := c.revokeSigned(ctx, t, user, now); err != nil {
		return 0, err
	}
	return n, c.settle(ctx, Control{Kind: ControlTokensRevoked, Tenant: t, User: user, Until: now}, true, nil,
		actor, EventTokenRevoked, map[string]any{"tokens": n})
}
