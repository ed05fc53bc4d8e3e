// Prints what the program itself sees of NODE_OPTIONS and its heap limit, then exits with
// code 3: leakscope must leave all three as they were.
'use strict';
const v8 = require('v8');
console.log('NODE_OPTIONS=%s', process.env.NODE_OPTIONS === undefined ? '(unset)' : process.env.NODE_OPTIONS);
console.log('heap_limit_mib=%d', Math.round(v8.getHeapStatistics().heap_size_limit / 1048576));
const keep = [];
for (let i = 0; i < 1000; i++) keep.push(new Array(100).fill(i));
setTimeout(() => process.exit(3), 600);
