// A list that keeps a record of every job for as long as the script runs (the first
// argument, in seconds; default 2), beside a buffer made and dropped per job. The list grows
// in `keepRecord`, or in `tick` if V8 inlined it there (its sampling heap profiler then names
// the function it was inlined into): a longer run keeps more, so the diff of a short and a
// long run, or of one run's start and end, puts that site first.
'use strict';
const kept = [];

function keepRecord(id) {
  kept.push(new Array(256).fill(id));
}

function churn(id) {
  return Buffer.alloc(8192, id & 0xff).length;
}

const seconds = Number(process.argv[2] || 2);
const started = Date.now();
let id = 0;
const timer = setInterval(function tick() {
  for (let i = 0; i < 20; i++) {
    keepRecord(id);
    churn(id++);
  }
  if (Date.now() - started > seconds * 1000) {
    clearInterval(timer);
    console.log('growing_list: %d records', kept.length);
  }
}, 10);
