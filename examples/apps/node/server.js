// server.js: a Node.js http server as an hfork exec worker, core modules only.
//
//     listener "node" {
//       class   = "exec"
//       command = ["node", "apps/node/server.js"]
//       ready   = "started"
//     }
//
// It serves every socket hfork passes in (fds 3.. per LISTEN_FDS) and never
// opens a port of its own. On SIGTERM it stops accepting, lets in-flight
// requests finish, closes idle keep-alive connections, and exits.
//
// Why ready = "started": READY=1 and WATCHDOG=1 are datagrams on a unix
// datagram socket, and Node's core has none (dgram is UDP only, net is
// streams only). A helper process such as systemd-notify would send them
// from its own pid, which hfork rightly ignores: it trusts a datagram only
// from the worker's pid, as the kernel reports it. So this worker sends
// nothing, and hfork counts it ready once it runs. Connections that arrive
// before it calls accept() wait in the socket's backlog, so none is refused;
// the cost is that a reload retires the old workers without waiting for the
// new ones to finish booting, and the watchdog (timeout) never applies.
'use strict';

const http = require('http');

const KEEPALIVE_MS = 5000; // an idle keep-alive connection is closed after this
const DRAIN_MS = Number(process.env.DRAIN_SECONDS || 25) * 1000; // keep under graceful_timeout
const GREETING = process.env.GREETING || 'hello';
let stopping = false;

function listenFds() {
  if (process.env.LISTEN_PID && Number(process.env.LISTEN_PID) !== process.pid) {
    throw new Error(`LISTEN_PID=${process.env.LISTEN_PID} is not this process (${process.pid})`);
  }
  const n = Number(process.env.LISTEN_FDS || 0);
  if (n < 1) {
    throw new Error('no LISTEN_FDS: run me as an hfork exec worker (or under systemd socket activation)');
  }
  return Array.from({ length: n }, (_, i) => 3 + i);
}

// GET / answers "<GREETING> from node"; GET /sleep?s=0.5 does the same
// after a pause (10 s at most), to watch a drain wait for it.
function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const pause = url.pathname === '/sleep' ? Math.min(Number(url.searchParams.get('s') ?? 1) || 0, 10) : 0;
  setTimeout(() => {
    const body = `${GREETING} from node\n`;
    // Draining: this is the connection's last response.
    if (stopping) res.setHeader('Connection', 'close');
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }, pause * 1000);
}

const servers = listenFds().map((fd) => {
  const server = http.createServer({ keepAliveTimeout: KEEPALIVE_MS }, handler);
  // Sibling workers accept from the same socket; libuv treats a lost race
  // (EAGAIN) as nothing to accept.
  server.listen({ fd });
  return server;
});

function stop() {
  if (stopping) return;
  stopping = true;
  console.error('draining');
  let open = servers.length;
  for (const server of servers) {
    // close(): stop accepting, and (Node 19+) close idle keep-alive
    // connections; the callback runs once in-flight requests are done.
    server.close(() => {
      if (--open === 0) process.exit(0);
    });
    if (server.closeIdleConnections) server.closeIdleConnections(); // Node 18.2+
  }
  setTimeout(() => {
    console.error('drain timeout, exiting');
    process.exit(0);
  }, DRAIN_MS).unref();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
