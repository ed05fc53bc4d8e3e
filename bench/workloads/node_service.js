// A request loop in the shape of a Node.js service, for bench/runtimes.py: each request parses
// a header line, looks its session up in a bounded cache (a Map, first in first out), builds
// a JSON response, and one in 128 compresses it with zlib.deflateSync (zlib's state is malloc'd
// natively and freed). Nothing leaks.
//
// Arguments: warm-up requests, measured requests. Prints the measured phase's throughput,
// which the runner compares between tools (the isolate's steady speed, start-up and exit left
// out), and a checksum. The measured phase yields to the event loop every 10,000 requests, as
// a server does between requests, so that timers (leakscope's sampling) run.
'use strict';

const zlib = require('zlib');

const SESSIONS = 20000;
const sessions = new Map();
const order = new Array(SESSIONS);
let next = 0;

function handle(i) {
  const x = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  const y = Math.imul(x ^ (x >>> 15), 0x85ebca6b) >>> 0;
  const header = `GET /item/${(x >>> 8) % 100000} user=${y % 50000}`;
  const parts = header.split(' ');
  const item = parseInt(parts[1].substring(6), 10);
  const user = parts[2].substring(5);
  let session = sessions.get(user);
  if (session === undefined) {
    session = { user, requests: 0, state: new Array(32).fill(0) };
    // First in, first out: a ring of the keys says which entry to evict (V8's Map keeps
    // deleted entries until it rehashes, so evicting through keys() would make this loop
    // mostly a walk over them).
    const evicted = order[next];
    if (evicted !== undefined) {
      sessions.delete(evicted);
    }
    order[next] = user;
    next = (next + 1) % SESSIONS;
    sessions.set(user, session);
  }
  session.requests++;
  const body = [];
  for (let k = 0; k < 8; k++) {
    body.push({ item: item + k, user: session.user });
  }
  const text = JSON.stringify(body);
  let sum = text.length + session.requests;
  if (i % 128 === 0) {
    sum += zlib.deflateSync(text, { level: 1 }).length;
  }
  return sum;
}

function run(from, to, done) {
  let checksum = 0;
  let i = from;
  const step = () => {
    const end = Math.min(to, i + 10000);
    for (; i < end; i++) {
      checksum = (checksum + handle(i)) % 1000000007;
    }
    if (i < to) {
      setImmediate(step);
    } else {
      done(checksum);
    }
  };
  step();
}

const warmup = Number(process.argv[2]);
const measured = Number(process.argv[3]);
run(0, warmup, (first) => {
  const start = process.hrtime.bigint();
  run(warmup, warmup + measured, (second) => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const perSecond = Math.round(measured / seconds);
    console.log(`node-service: ${measured} requests, ${perSecond} requests/s, checksum ${(first + second) % 1000000007}`);
  });
});
