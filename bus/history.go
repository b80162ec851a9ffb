package bus

import (
	"context"
	"errors"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxHistory is the most messages one [Bus.History] call returns.
const MaxHistory = 500

// History implements [kaiwa.Bus]. It reads the channel's messages from the
// stream: it looks back over a window of sequences before the upper bound,
// widening it until it holds limit messages of the channel or reaches the
// start of the stream.
func (b *Bus) History(ctx context.Context, t kaiwa.TenantID, ch, before string, limit int) ([]kaiwa.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, MaxHistory)
	subj := b.subj.msg(t, ch)
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	var upper uint64 // exclusive
	if before != "" {
		seq, ok := b.MessageSeq(before)
		if !ok {
			return nil, kaiwa.Errorf(kaiwa.CodeBadRequest, "before is not a message id of this server")
		}
		upper = seq
	} else {
		last, err := b.stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return []kaiwa.Message{}, nil
		}
		if err != nil {
			return nil, unavailable("history", err)
		}
		upper = last.Sequence + 1
	}
	window := uint64(limit) * 4
	for {
		start := uint64(1)
		if upper > window {
			start = upper - window
		}
		msgs, _, err := b.readRange(ctx, subj, start, upper, limit)
		if err != nil {
			return nil, err
		}
		if len(msgs) >= limit || start == 1 {
			return msgs, b.overlay(ctx, t, ch, msgs)
		}
		info, err := b.stream.Info(ctx)
		if err != nil {
			return nil, unavailable("history", err)
		}
		if start <= info.State.FirstSeq {
			return msgs, b.overlay(ctx, t, ch, msgs)
		}
		window *= 8
	}
}

// Replay returns the messages of a channel with sequence after afterSeq,
// and the changes of messages stored meanwhile (edits, reactions), in
// stream order, oldest first: all of them, or the newest max when there
// are more.
// recovered is false when that is not every message of the channel since
// afterSeq: more than max, or the stream no longer holds the start of the
// gap. When recovered, the first message's Prev is afterSeq.
func (b *Bus) Replay(ctx context.Context, t kaiwa.TenantID, ch string, afterSeq uint64, max int) ([]kaiwa.Message, bool, error) {
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	info, err := b.stream.Info(ctx)
	if err != nil {
		return nil, false, unavailable("replay", err)
	}
	recovered := afterSeq+1 >= info.State.FirstSeq
	msgs, total, err := b.scan(ctx, []string{b.subj.msg(t, ch), b.subj.change(t, ch)}, afterSeq+1, 0, max, false)
	if err != nil {
		return nil, false, err
	}
	if total > len(msgs) {
		recovered = false
	}
	if recovered && len(msgs) > 0 {
		msgs[0].Prev = afterSeq
	}
	return msgs, recovered, nil
}

// LastSeq implements [kaiwa.Bus]: the seq of the newest message of a
// channel the stream holds, 0 when it holds none.
func (b *Bus) LastSeq(ctx context.Context, t kaiwa.TenantID, ch string) (uint64, error) {
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	last, err := b.stream.GetLastMsgForSubject(ctx, b.subj.msg(t, ch))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("last seq", err)
	}
	return last.Sequence, nil
}

// Missed implements [kaiwa.Bus]: it returns the first max messages of a
// channel with after < seq < before (before 0: up to the newest), oldest
// first. complete is false when there are more below before; a message
// the stream no longer holds (deleted, or aged out) is not among them.
// Each message's Prev is the one before it in the channel, the first's
// after.
func (b *Bus) Missed(ctx context.Context, t kaiwa.TenantID, ch string, after, before uint64, max int) ([]kaiwa.Message, bool, error) {
	if max <= 0 {
		return nil, false, nil
	}
	ctx, cancel := b.timeout(ctx)
	defer cancel()
	msgs, more, err := b.readFirst(ctx, b.subj.msg(t, ch), after+1, before, max)
	if err != nil {
		return nil, false, err
	}
	if len(msgs) > 0 {
		msgs[0].Prev = after
	}
	return msgs, !more, nil
}

// readFirst reads the first keep messages of subj with sequence in
// [start, upper) (upper 0: to the end); more reports that there are
// others after them in that range.
func (b *Bus) readFirst(ctx context.Context, subj string, start, upper uint64, keep int) (out []kaiwa.Message, more bool, err error) {
	var total int
	out, total, err = b.scan(ctx, []string{subj}, start, upper, keep+1, true)
	if total > keep {
		return out[:keep], true, err
	}
	return out, false, err
}

// readRange reads the messages of subj with sequence in [start, upper)
// (upper 0: to the end) and keeps the last keep of them; total is how many
// it read. Each message's Prev is the one read before it (0 for the
// first).
func (b *Bus) readRange(ctx context.Context, subj string, start, upper uint64, keep int) (out []kaiwa.Message, total int, err error) {
	return b.scan(ctx, []string{subj}, start, upper, keep, false)
}

// scan reads the messages of subjs with sequence in [start, upper)
// (upper 0: to the end). It keeps the last keep of them, or with first the
// first keep and stops there; total is how many it read. A message's Prev
// is the message read before it; change entries have none and are not
// one.
func (b *Bus) scan(ctx context.Context, subjs []string, start, upper uint64, keep int, first bool) (out []kaiwa.Message, total int, err error) {
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjs,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return nil, 0, unavailable("read stream", err)
	}
	var prev uint64
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, 0, unavailable("read stream", err)
		}
		n, done := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			seq := meta.Sequence.Stream
			if upper != 0 && seq >= upper {
				done = true
				break
			}
			msg, err := b.decodeMessage(m.Subject(), "msg.", m.Data(), seq, prev)
			if err != nil {
				b.log.Warn("skipping undecodable stored message", "seq", seq, "err", err)
				continue
			}
			if msg.Kind == "" {
				prev = seq
			} else {
				msg.Prev = 0
			}
			total++
			out = append(out, *msg)
			if len(out) > keep {
				out = out[1:]
			}
			if meta.NumPending == 0 || first && len(out) == keep {
				done = true
				break
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, 0, unavailable("read stream", err)
		}
		if done || n == 0 {
			return out, total, nil
		}
	}
}
