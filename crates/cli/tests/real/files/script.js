// Run by the real-program suite (tests/real_programs.rs) with node, natively and under
// leakscope; its output must be the same.
'use strict';
const crypto = require('crypto');
const zlib = require('zlib');

const words = 'the quick brown fox jumps over the lazy dog the end'.split(' ');
const counts = new Map();
for (const w of words) counts.set(w, (counts.get(w) || 0) + 1);
console.log(JSON.stringify([...counts].sort()));

let objects = [];
for (let i = 0; i < 200000; i++) {
  objects.push({ id: i, name: `item-${i}`, tags: [i % 7, i % 11] });
  if (objects.length > 5000) objects = [];
}
console.log('sha256:', crypto.createHash('sha256').update('leakscope').digest('hex'));
const big = Buffer.alloc(1 << 20, 'abc');
const packed = zlib.gzipSync(big, { level: 6 });
console.log('gunzip round trip:', zlib.gunzipSync(packed).equals(big));
const text = JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({ i, sq: i * i })));
console.log('json', text.length, JSON.parse(text).reduce((s, o) => s + o.sq, 0));

new Promise((resolve) => setTimeout(() => resolve(42), 20)).then((v) => {
  console.log('timer and promise:', v);
  process.exitCode = 0;
});
