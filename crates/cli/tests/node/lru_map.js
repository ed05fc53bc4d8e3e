// A Map used as an LRU cache with a fixed capacity of 2000 entries: it fills up in the first
// half second, then every insertion evicts the oldest entry. No site keeps growing,
// and no constructor grows between the heap snapshots (at the 10th and 20th sample: each
// holds the 2000 entries). Runs about 8 seconds, for the second snapshot.
// expect no-growing-site
// expect no-growing-constructor
// expect no-listener-leak
'use strict';
const CAPACITY = 2000;
const cache = new Map();

function lookup(key) {
  if (cache.has(key)) {
    const value = cache.get(key);
    cache.delete(key); // move to the newest end
    cache.set(key, value);
    return value;
  }
  const value = { key, payload: new Array(64).fill(key.length) };
  cache.set(key, value);
  if (cache.size > CAPACITY) cache.delete(cache.keys().next().value);
  return value;
}

let id = 0;
const started = Date.now();
const timer = setInterval(function tick() {
  for (let i = 0; i < 200; i++) lookup('key-' + (id++ % 100000));
  if (Date.now() - started > 8000) {
    clearInterval(timer);
    console.log('lru_map: %d entries', cache.size);
  }
}, 10);
