// The memo object of memo_object.js as an ES module.
// expect growing-site remember handleRequest tick
// expect no-listener-leak
const memo = new Map();

function remember(key, value) {
  memo.set(key, { value, stored: Date.now(), tags: ['a', 'b', String(key)] });
}

function handleRequest(id) {
  const key = 'request-' + id;
  remember(key, 'result of ' + key);
  return key.length;
}

let id = 0;
const started = Date.now();
const timer = setInterval(function tick() {
  for (let i = 0; i < 200; i++) handleRequest(id++);
  if (Date.now() - started > 3000) {
    clearInterval(timer);
    console.log('memo_object.mjs: %d entries', memo.size);
  }
}, 10);
