package bus

import (
	"context"

	"github.com/kaiwa-chat/kaiwa"
)

// opSigning asks for what a UA needs to admit a tenant's signed tokens.
const opSigning dirOp[signingRequest, signingReply] = "signing"

type (
	// signingRequest asks for the tenant's signing state.
	signingRequest struct{}
	// signingReply is the tenant's signing state.
	signingReply struct {
		State kaiwa.SigningState `json:"state"`
	}
)

// signingSource is a directory that also answers signing state (the API
// tier's cache, and the store).
type signingSource interface {
	SigningState(ctx context.Context, t kaiwa.TenantID) (kaiwa.SigningState, error)
}

func (s *dirServer) signing(ctx context.Context, t kaiwa.TenantID, _ signingRequest) (signingReply, error) {
	src, ok := s.d.(signingSource)
	if !ok {
		return signingReply{}, kaiwa.Errorf(kaiwa.CodeUnavailable, "signed tokens are not served here")
	}
	st, err := src.SigningState(ctx, t)
	return signingReply{State: st}, err
}

// SigningState asks the API tier for tenant t's signing keys, revocations
// and sanctions in force.
func (c dirClient) SigningState(ctx context.Context, t kaiwa.TenantID) (kaiwa.SigningState, error) {
	rep, err := call(ctx, c.b, t, opSigning, signingRequest{})
	if err != nil {
		return kaiwa.SigningState{}, err
	}
	for i := range rep.State.Keys {
		rep.State.Keys[i].Tenant = t
	}
	rep.State.Sanctions = tenantSanctions(t, rep.State.Sanctions)
	return rep.State, nil
}
