// An unbounded memo object keyed by request id: every result is kept forever. The function
// that stores is `remember`; V8 may inline it into its caller `handleRequest`, and that into
// `tick`, and its sampling heap profiler then names the function it was inlined into. A request buffer is made and dropped each time: not
// growing. Runs about 3 seconds.
// expect growing-site remember handleRequest tick
// expect no-listener-leak
'use strict';
const memo = {};

function remember(key, value) {
  memo[key] = { value, stored: Date.now(), tags: ['a', 'b', String(key)] };
}

function handleRequest(id) {
  const buffer = Buffer.alloc(4096, id & 0xff); // freed after the request
  const key = 'request-' + id;
  remember(key, 'result of ' + key + ' ' + buffer[0]);
  return buffer.length;
}

let id = 0;
const started = Date.now();
const timer = setInterval(function tick() {
  for (let i = 0; i < 200; i++) handleRequest(id++);
  if (Date.now() - started > 3000) {
    clearInterval(timer);
    console.log('memo_object: %d entries', Object.keys(memo).length);
  }
}, 10);
