// A module-level Map that keeps every request object of a named class, keyed by request id,
// and never drops one: the heap snapshots' growing constructor is `Request`, and its
// retainer path runs through the Map held by the module's `requestCache` variable. A
// response buffer is made and dropped per request: not growing. Runs about 8 seconds, for
// the second snapshot (at the 20th sample).
// expect growing-constructor Request requestCache
// expect no-listener-leak
'use strict';
const requestCache = new Map();

class Request {
  constructor(id) {
    this.id = id;
    this.url = '/items/' + id;
    this.headers = { 'x-request-id': String(id), accept: 'application/json' };
    this.receivedAt = Date.now();
  }
}

function serve(id) {
  const request = new Request(id);
  requestCache.set(id, request);
  return Buffer.alloc(2048, id & 0xff).length;
}

let id = 0;
const started = Date.now();
const timer = setInterval(function tick() {
  for (let i = 0; i < 100; i++) serve(id++);
  if (Date.now() - started > 8000) {
    clearInterval(timer);
    console.log('request_cache: %d requests kept', requestCache.size);
  }
}, 10);
