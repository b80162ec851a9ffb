package kaiwa

import (
	"context"
	"time"
)

// AddSigningKey registers a key that verifies tenant t's signed tokens
// ([SigningKey.Check]ed); several may be registered at once, so that a
// game server rotates keys without downtime. Every UA loads the tenant's
// keys again ([ControlSigningKeys]). Event: signing_key_added (detail.kid,
// detail.alg).
func (c *Core) AddSigningKey(ctx context.Context, actor string, t TenantID, k SigningKey) (SigningKey, error) {
	if err := checkActor(actor); err != nil {
		return SigningKey{}, err
	}
	k.Tenant = t
	if err := k.Check(); err != nil {
		return SigningKey{}, err
	}
	k.CreatedAt = c.now().UTC().Truncate(time.Millisecond)
	if err := c.Signing.PutSigningKey(ctx, k); err != nil {
		return SigningKey{}, err
	}
	err := c.settle(ctx, Control{Kind: ControlSigningKeys, Tenant: t}, true, nil,
		actor, EventSigningKeyAdded, map[string]any{"kid": k.Kid, "alg": k.Alg})
	return k.Public(), err
}

// DeleteSigningKey removes one of tenant t's signing keys ([CodeNotFound]
// when it has none of that kid); tokens signed with it are refused by
// every UA from then on, and sessions already open go on. Event:
// signing_key_deleted (detail.kid).
func (c *Core) DeleteSigningKey(ctx context.Context, actor string, t TenantID, kid string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	err := c.Signing.DeleteSigningKey(ctx, t, kid)
	if err != nil && !IsCode(err, CodeNotFound) {
		return err
	}
	return c.settle(ctx, Control{Kind: ControlSigningKeys, Tenant: t}, err == nil, err,
		actor, EventSigningKeyDeleted, map[string]any{"kid": kid})
}

// RevokeTokenID revokes the signed token with id jti of tenant t: every UA
// refuses it from now on and closes the sessions that used it (4001,
// [ControlTokenIDRevoked]). The revocation lasts as long as a token may
// ([MaxTokenTTL] and the [ClockSkew]). Event: token_id_revoked
// (detail.jti).
func (c *Core) RevokeTokenID(ctx context.Context, actor string, t TenantID, jti string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if jti == "" || len(jti) > MaxTokenIDLen {
		return Errorf(CodeBadRequest, "a token id (jti) has 1 to %d characters", MaxTokenIDLen)
	}
	r := RevokedTokenID{ID: jti, Until: c.now().Add(MaxTokenTTL + ClockSkew).UTC().Truncate(time.Millisecond)}
	if err := c.Signing.RevokeTokenID(ctx, t, r); err != nil {
		return err
	}
	return c.settle(ctx, Control{Kind: ControlTokenIDRevoked, Tenant: t, ID: jti, Until: r.Until}, true, nil,
		actor, EventTokenIDRevoked, map[string]any{"jti": jti})
}

// revokeSigned records that a user's signed tokens issued before since are
// revoked, when the core keeps signed tokens.
func (c *Core) revokeSigned(ctx context.Context, t TenantID, user string, since time.Time) error {
	if c.Signing == nil {
		return nil
	}
	return c.Signing.RevokeUserTokens(ctx, t, UserRevocation{User: user, Since: since})
}
