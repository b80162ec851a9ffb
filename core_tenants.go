package kaiwa

import "context"

// CreateTenant makes tenant id, named name, and its first API key, which
// it returns once. Event: tenant_created.
func (c *Core) CreateTenant(ctx context.Context, actor string, id TenantID, name string) (apiKey string, err error) {
	if err := checkActor(actor); err != nil {
		return "", err
	}
	if err := CheckID("tenant", string(id)); err != nil {
		return "", err
	}
	if apiKey, err = c.Tenants.CreateTenant(ctx, id, name); err != nil {
		return "", err
	}
	c.record(actor, id, EventTenantCreated, "", "", map[string]any{"name": name})
	return apiKey, nil
}

// DisableTenant refuses tenant id's API keys and user tokens from now on
// (see [Core.RevokeKey] on the API processes' cached key checks). Event:
// tenant_disabled.
func (c *Core) DisableTenant(ctx context.Context, actor string, id TenantID) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := c.Tenants.DisableTenant(ctx, id); err != nil {
		return err
	}
	c.keysChanged(ctx, id)
	c.record(actor, id, EventTenantDisabled, "", "", nil)
	return nil
}

// keysChanged tells the API processes to drop their cached checks of
// tenant t's API keys ([ControlKeys]). It is a hint: a process that does
// not hear it refuses the key once its cached check expires (the cache's
// TTL, a second by default), so its failure fails nothing.
func (c *Core) keysChanged(ctx context.Context, t TenantID) {
	_ = c.Bus.PublishControl(ctx, Control{Kind: ControlKeys, Tenant: t})
}

// SetSettings replaces tenant t's settings ([Settings.Check]ed; zero
// fields mean the defaults). Every UA and API process drops its copy
// ([ControlSettings]) and rebuilds the tenant's NG matcher, whose policy
// is a setting ([ControlNGWords]). Event: settings_changed
// (detail.settings, as given).
func (c *Core) SetSettings(ctx context.Context, actor string, t TenantID, s Settings) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := s.Check(); err != nil {
		return err
	}
	if err := c.Tenants.SetTenantSettings(ctx, t, s); err != nil {
		return err
	}
	perr := c.Bus.PublishControl(ctx, Control{Kind: ControlSettings, Tenant: t})
	if perr == nil {
		perr = c.Bus.PublishControl(ctx, ngControl(t))
	}
	c.record(actor, t, EventSettingsChanged, "", "", map[string]any{"settings": s})
	return perr
}

// AddKey makes another API key for tenant t and returns it, once. The
// existing keys stay valid until revoked, so a game server can switch
// keys without downtime. Event: key_added.
func (c *Core) AddKey(ctx context.Context, actor string, t TenantID) (apiKey string, err error) {
	if err := checkActor(actor); err != nil {
		return "", err
	}
	if apiKey, err = c.Tenants.RotateKey(ctx, t); err != nil {
		return "", err
	}
	c.record(actor, t, EventKeyAdded, "", "", nil)
	return apiKey, nil
}

// RevokeKey revokes API key keyID of tenant t: [CodeNotFound] when the
// tenant has no such active key, [CodeConflict] for its last active key.
// A key may revoke itself. Every API process refuses it at once, or
// within its key cache's TTL when it missed the live change
// ([ControlKeys]). Event: key_revoked (detail.id).
func (c *Core) RevokeKey(ctx context.Context, actor string, t TenantID, keyID int64) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if keyID < 1 {
		return Errorf(CodeBadRequest, "a key id is a positive integer")
	}
	if err := c.Tenants.RevokeKey(ctx, t, keyID); err != nil {
		return err
	}
	c.keysChanged(ctx, t)
	c.record(actor, t, EventKeyRevoked, "", "", map[string]any{"id": keyID})
	return nil
}
