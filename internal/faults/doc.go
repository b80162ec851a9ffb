// Package faults holds Kaiwa's fault suite and its soak: tests that drive
// faults into a real stack while real clients chat, then count what every
// client received and what the log kept. They are slow, so plain
// "go test ./..." skips them: "make test-faults" runs the suite
// (KAIWA_FAULTS=1) and "make soak" the soak (KAIWA_SOAK=5m or any
// duration).
//
// # The stack
//
// One stack serves every fault of a run: the kaiwa binary (bin/kaiwa, or
// $KAIWA_TEST_BIN), a private MariaDB started with devstack.StartMariaDB in a
// temporary directory, NATS with JetStream in a process of its own
// ("kaiwa nats", so that it can be killed with SIGKILL and started again
// on the same port and store), and devstack.Start with those: one API
// process per version (api-v1 also runs the log writer), two UA processes
// per version (v1 and v2) under the dev supervisor, nginx with TLS in
// front. Only loopback addresses are used, on free ports.
//
// # A round
//
// Each fault runs in a round of its own, with fresh users and channels:
//
//  1. Every member (40 v2 and 20 v1 clients by default) connects through
//     its own TCP proxy to nginx's wss port; each is a persistent member,
//     set through the tenant API, of its home channel and the next one (4
//     channels). Sending starts once every member is ready.
//  2. Each member says a message to its home channel about every 800 ms,
//     with a client id (cid; v1 carries it too) that is also the text. A
//     prober calls the tenant API about every 300 ms, in turn: a system
//     message to a channel (it counts as a sent message), a page of a
//     channel's log, a token, and the deletion of a message id that does
//     not exist yet (a future sequence number of the stream).
//  3. After a warm-up the fault is driven; traffic goes on until a settle
//     time after the faulty part is back, then stops. The suite waits for
//     deliveries and the log to catch up, and checks.
//
// A member that loses its connection dials again: after a v2 "reconnect"
// it waits the after_ms the server chose; otherwise it backs off from
// 250 ms, doubling to at most 2 s, each wait jittered down to half. A v2
// member resumes with the last seq it received per channel (0 for a
// channel it has received nothing from); a v1 member has no resume: its
// membership joins it to its channels again.
//
// # The rules
//
// Outcome of a send. A send answered "ok" (or 201 from the API) is
// acknowledged. A send answered with an error op (or an HTTP error
// status) at its first attempt is refused: the server said it was not
// stored, so it must never be delivered or logged; except "unavailable"
// (503 from the API), which says the outcome is unknown and is counted as
// no answer. A send that got no
// answer (the connection dropped, or 5 s passed) has an unknown outcome:
// the member sends the same cid again on its next connection until an
// answer comes; an error answer to such a resend does not make it refused
// (the first attempt may have been stored), and it is sent again. A cid
// still unknown when the round ends may be delivered or not, but at most
// once.
//
// Delivery. Let A(ch) be the acknowledged messages of channel ch.
//
//   - A v2 member must receive every message of A(ch), for each of its
//     channels, exactly once over all its connections, and in each channel
//     in increasing seq order.
//   - A v1 member must receive, exactly once, every message of A(ch) whose
//     send began after one of its connections was ready and whose
//     acknowledgement came at least [v1Grace] (1 s) before that connection
//     ended as the client saw it (or the connection is still open). So a
//     v1 member that never disconnected must miss nothing of the round.
//     When the fault is the loss of the message bus, a connection that
//     ended before the bus was back counts as ended when the bus was lost:
//     a message acknowledged to its sender as the bus died may not have
//     reached the UAs, and a UA that fences itself sends its sessions away
//     before it can read the stream again, which a v1 client cannot
//     resume from. A
//     v1 member may receive a message outside those windows (counted, not
//     failed), but never twice, and in the stream's order.
//   - No member may receive a refused message (a "phantom").
//   - A v2 member's messages follow on by prev: each one's prev is the
//     last seq the member had in its channel, live and after a resume
//     (but for a resume that reported recovered false).
//
// Log. Every acknowledged message must be in the channel's log, read
// through GET /channels/{ch}/messages page by page, exactly once (one id
// per cid); no refused message may be there.
//
// Availability. Every member must be connected again by the fault's bound
// (for instance both UAs of v2 killed 10 s apart: every member back within
// 10 s after the second UA answers again); the worst downtime is the
// longest time a member spent between seeing its connection end and being
// ready again. Every API call made during the round must be answered
// within [apiBound] (2 s) with a success, 404 for the deletion of an
// unknown id, or 503; a call that takes longer or gets another answer
// fails the round.
//
// Health. No process may restart beyond the faults' own (each process's
// start count is compared with the kills and rolls the suite did), and no
// process may print a panic or a fatal error.
//
// # The cluster suite
//
// TestCluster (make test-cluster, KAIWA_CLUSTER=1, as root) runs the same
// rounds and rules against the multi-host deployment scripts/cluster.sh
// builds from the deploy kit: three NATS nodes (the streams at three
// replicas), a MariaDB primary and replica, two API hosts and two UA
// hosts (a UA per version and nginx each), each a network namespace, and
// the front on loopback; members connect through the front. First it
// shows that a channel whose members are spread over the four UA
// processes costs each UA process one message from NATS per message,
// whatever its local members (kaiwa_ua_bus_messages_total against
// kaiwa_ua_deliveries_total), and measures each host's CPU under steady
// chat. Then one failover per round, each printing its recovery (the
// longest wait between acknowledgements, when the members that moved were
// back, when the log was complete):
//
//   - the NATS node leading the message stream killed (SIGKILL) and
//     started again 10 s later;
//   - ua-1 cut off the cluster network for 15 s, the front still reaching
//     it: its UAs fence themselves (/readyz 503, sessions refused, the
//     members sent to ua-2), and are ready again once restored. The round
//     has v2 members only: what a cut-off UA cannot hear before it fences
//     never reaches its v1 sessions, which have no resume;
//   - every process of api-1 killed and left down;
//   - every process of ua-2 killed and left down;
//   - the MySQL primary stopped for 20 s.
//
// # The soak
//
// TestSoak runs one round for $KAIWA_SOAK with three members in four
// churning (each connection lives 10 to 30 s), every member joining and
// leaving an open lobby (presence) about every 5 s, and the API kicking or
// muting (2 s) a random member every 5 s; the prober does not delete future
// ids there. Every 10 s it samples each process: RSS, threads and open
// files from /proc, and a UA's goroutines and sessions from its /metrics.
// After a warm-up (a minute, or a fifth of the run if longer), the mean of
// the last third of a Kaiwa process's samples may exceed the mean of the
// first third by at most 20 % plus a small slack per metric (8 MiB of RSS,
// 20 goroutines, 8 sessions, 4 threads, 12 files); NATS and MariaDB, whose
// memory grows with what they store, are held to that for threads and
// files only. The delivery and log rules above apply as in a fault round.
//
// Each fault prints one line of figures: clients, sent, acknowledged,
// refused, unknown, delivered, lost, duplicated, out of order, gaps seen
// by v2 members, logged, phantoms, worst downtime against its bound, and
// API answers with their worst latency.
package faults
