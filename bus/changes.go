package bus

import (
	"context"
	"errors"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/nats-io/nats.go/jetstream"
)

var _ kaiwa.StreamReader = (*Bus)(nil)

// maxOverlay bounds the change entries one history read applies (the
// newest are kept: a later change of a message replaces an earlier one).
const maxOverlay = 10000

// Message implements [kaiwa.StreamReader]: message id of channel ch as
// the stream holds it, without the changes made to it since.
func (b *Bus) Message(ctx context.Context, t kaiwa.TenantID, ch, id string) (kaiwa.Message, error) {
	seq, ok := b.MessageSeq(id)
	if !ok {
		return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no message %s in this channel", id)
	}
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	raw, err := b.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no message %s in this channel", id)
	}
	if err != nil {
		return kaiwa.Message{}, unavailable("get message", err)
	}
	if raw.Subject != b.subj.msg(t, ch) {
		return kaiwa.Message{}, kaiwa.Errorf(kaiwa.CodeNotFound, "no message %s in this channel", id)
	}
	m, err := b.decodeMessage(raw.Subject, "msg.", raw.Data, seq, 0)
	if err != nil {
		return kaiwa.Message{}, unavailable("decode message", err)
	}
	return *m, nil
}

// overlay applies to msgs (a channel's, oldest first) the changes the
// stream holds after the first of them: the latest edit's text and time,
// the latest reaction counts.
func (b *Bus) overlay(ctx context.Context, t kaiwa.TenantID, ch string, msgs []kaiwa.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	changes, _, err := b.scan(ctx, []string{b.subj.change(t, ch)}, msgs[0].Seq+1, 0, maxOverlay, false)
	if err != nil || len(changes) == 0 {
		return err
	}
	at := make(map[string]int, len(msgs))
	for i := range msgs {
		at[msgs[i].ID] = i
	}
	for i := range changes {
		if j, ok := at[changes[i].Target]; ok {
			msgs[j].Apply(&changes[i])
		}
	}
	return nil
}
