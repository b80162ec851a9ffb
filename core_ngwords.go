package kaiwa

import "context"

// PutNGList replaces tenant t's NG words and allow-list ([NGList.Check]ed;
// nil lists clear them), and its policy when l.Policy is not empty. Every
// UA rebuilds the tenant's matcher ([ControlNGWords]). It returns the list
// as stored. Event: ng_list_changed (detail.op "replace").
func (c *Core) PutNGList(ctx context.Context, actor string, t TenantID, l NGList) (NGList, error) {
	if err := checkActor(actor); err != nil {
		return NGList{}, err
	}
	if err := l.Check(); err != nil {
		return NGList{}, err
	}
	stored, err := c.NG.PutNGList(ctx, t, l)
	if err != nil {
		return NGList{}, err
	}
	return stored, c.ngChanged(ctx, actor, t, stored, map[string]any{"op": "replace"})
}

// AddNGWords adds words and allow-list entries to tenant t's NG list
// ([NGList.Check]ed; entries already there are kept once), or sets its
// policy; l must hold one of them. Every UA rebuilds the tenant's matcher
// ([ControlNGWords], published also when nothing was new). It returns the
// list as stored. Event: ng_list_changed (detail.op "add").
func (c *Core) AddNGWords(ctx context.Context, actor string, t TenantID, l NGList) (NGList, error) {
	if err := checkActor(actor); err != nil {
		return NGList{}, err
	}
	if len(l.Words) == 0 && len(l.Allow) == 0 && l.Policy == "" {
		return NGList{}, Errorf(CodeBadRequest, "nothing to add: send words, allow or policy")
	}
	if err := l.Check(); err != nil {
		return NGList{}, err
	}
	stored, err := c.NG.AddNGWords(ctx, t, l)
	if err != nil {
		return NGList{}, err
	}
	return stored, c.ngChanged(ctx, actor, t, stored, map[string]any{"op": "add", "added": len(l.Words) + len(l.Allow)})
}

// DeleteNGWord removes an entry from tenant t's NG words or allow-list and
// returns the list as stored. Every UA rebuilds the tenant's matcher
// ([ControlNGWords], published also when the entry was in neither, which
// is [CodeNotFound]). Event: ng_list_changed (detail.op "delete").
func (c *Core) DeleteNGWord(ctx context.Context, actor string, t TenantID, word string) (NGList, error) {
	if err := checkActor(actor); err != nil {
		return NGList{}, err
	}
	if err := CheckNGWord(word); err != nil {
		return NGList{}, Errorf(CodeBadRequest, "word: %s", ErrorMessage(err))
	}
	stored, err := c.NG.DeleteNGWord(ctx, t, word)
	if err != nil && !IsCode(err, CodeNotFound) {
		return NGList{}, err
	}
	if err != nil {
		return NGList{}, c.settle(ctx, ngControl(t), false, err, actor, EventNGChanged, nil)
	}
	return stored, c.ngChanged(ctx, actor, t, stored, map[string]any{"op": "delete", "word": word})
}

// ngChanged tells every UA that tenant t's NG list is now l, and records
// the change with its counts and policy.
func (c *Core) ngChanged(ctx context.Context, actor string, t TenantID, l NGList, detail map[string]any) error {
	detail["policy"] = l.Policy
	detail["words"] = len(l.Words)
	detail["allow"] = len(l.Allow)
	return c.settle(ctx, ngControl(t), true, nil, actor, EventNGChanged, detail)
}

// ngControl is the live change of tenant t's NG list.
func ngControl(t TenantID) Control { return Control{Kind: ControlNGWords, Tenant: t} }
