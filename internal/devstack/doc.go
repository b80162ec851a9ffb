// Package devstack runs the whole of Kaiwa on one machine for development:
// the engine behind "kaiwa dev".
//
// # What runs
//
// [Start] starts, in order:
//
//   - a private MariaDB under VarDir/mysql (unless a DSN is given), listening
//     on its unix socket only; see [StartMariaDB];
//   - an in-process NATS server with JetStream, stored in VarDir/nats
//     (unless a URL is given);
//   - the migrations, as the child "kaiwa migrate up";
//   - for every live protocol version, one API process and UAPerVersion UA
//     processes on unix sockets in VarDir/run, supervised by a [Supervisor]
//     (restart with backoff, output prefixed with the child's name);
//   - nginx with a configuration rendered by package nginx into
//     VarDir/nginx and a self-signed certificate in VarDir/tls, without
//     limits per client address (it is what "kaiwa bench" measures
//     through nginx, with thousands of clients on one address), serving
//     the TypeScript SDK's demo page at /demo/ from [Config.DemoDir].
//
// When every child answers, it makes sure a "demo" tenant exists, keeps its
// API key in VarDir/demo-api-key, and prints the URLs and a copy-paste
// walkthrough. It returns a [Stack]: the children by name ([Process]: Pid,
// Kill, Signal, Restart, Stop), the URLs, DSN, NATS URL and demo key, so
// that tests can drive faults into a real stack. [Run], what "kaiwa dev"
// runs, is Start, then a wait for the context (SIGHUP rolls the UAs with
// [Stack.RollUAs]), then [Stack.Stop].
//
// # Log
//
// The supervisor logs every child's start (with its pid), exit and
// restart at info (an exit nobody asked for at warn). The APIs and UAs run
// with --log-requests: every API call and every WebSocket connect is one
// JSON line at info with the tenant the credential names, never the
// credential.
//
// # Shutdown
//
// [Stack.Stop] (Ctrl-C) stops everything in the order of the drain: the
// UAs first, which send closing (and v2 reconnect) to their clients
// through nginx over their drain window; then the APIs; then nginx; then
// NATS and MariaDB. Each child gets SIGTERM (nginx SIGQUIT), a stop
// timeout, then SIGKILL. A UA's stop timeout is its drain window
// ([Config.DrainWindow], 2 s by default in dev so that Ctrl-C stays quick;
// production UAs use 30 s) plus [Config.DrainTimeout], so no UA is killed
// in the middle of its drain.
package devstack
