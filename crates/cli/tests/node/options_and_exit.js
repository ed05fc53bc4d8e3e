// Prints what the program itself sees of NODE_OPTIONS, its heap limit and the listener
// methods leakscope's preload wraps (their names and parameter counts), then exits with
// code 3: leakscope must leave all of them as they were.
'use strict';
const v8 = require('v8');
console.log('NODE_OPTIONS=%s', process.env.NODE_OPTIONS === undefined ? '(unset)' : process.env.NODE_OPTIONS);
console.log('heap_limit_mib=%d', Math.round(v8.getHeapStatistics().heap_size_limit / 1048576));
const EventEmitter = require('events');
const wrapped = [
  EventEmitter.prototype.on,
  EventEmitter.prototype.addListener,
  EventEmitter.prototype.prependListener,
  EventTarget.prototype.addEventListener,
];
console.log('listener_methods=%s', wrapped.map((f) => f.name + '/' + f.length).join(' '));
const keep = [];
for (let i = 0; i < 1000; i++) keep.push(new Array(100).fill(i));
setTimeout(() => process.exit(3), 600);
