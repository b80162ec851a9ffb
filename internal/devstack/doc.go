// Package devstack runs the whole of Kaiwa on one machine for development:
// the engine behind "kaiwa dev".
//
// # What runs
//
// [Run] starts, in order:
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
//     through nginx, with thousands of clients on one address).
//
// When every child answers, it makes sure a "demo" tenant exists, keeps its
// API key in VarDir/demo-api-key, and prints the URLs and a copy-paste
// walkthrough.
//
// # Shutdown
//
// Cancelling the context stops everything in the reverse order of need:
// nginx, the UAs, the APIs, NATS, then MariaDB. Each child gets SIGTERM
// (nginx SIGQUIT), a drain timeout, then SIGKILL.
package devstack
