// An HTTP server on 127.0.0.1 (port from argv, 0: any) that keeps every request's headers in
// a list for "auditing" and never trims it: it leaks per request. Prints its port, then
// serves until it is stopped (leakscope's --duration sends SIGTERM). V8 may inline
// `auditRequest` into `serve`.
// expect growing-site auditRequest serve
'use strict';
const http = require('http');

const audit = [];
function auditRequest(request) {
  audit.push({ at: Date.now(), url: request.url, headers: Object.assign({}, request.headers), note: 'x'.repeat(512) });
}

const server = http.createServer(function serve(request, response) {
  auditRequest(request);
  response.writeHead(200, { 'content-type': 'text/plain' });
  response.end('ok ' + audit.length + '\n');
});
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log('listening on %d', server.address().port);
});
