// The seed's listener leak: every request attaches a listener to a long-lived emitter (the
// configuration bus) and never removes it; the listener's closure keeps the request's large
// buffer alive (allocated in `attachConfigWatcher`, or in the function V8 inlined it into). Runs about 3 seconds.
// expect listener-leak EventEmitter config-change attachConfigWatcher
// expect growing-site attachConfigWatcher handleRequest tick
'use strict';
const EventEmitter = require('events');

const configBus = new EventEmitter();
configBus.setMaxListeners(0); // the warning at 11 listeners is easy to miss anyway

function attachConfigWatcher(request) {
  const scratch = new Array(2000).fill(request.id); // kept alive by the closure below
  configBus.on('config-change', function onConfigChange() {
    return scratch.length + request.id;
  });
}

function handleRequest(id) {
  const request = { id, path: '/item/' + id };
  attachConfigWatcher(request);
  return request.path.length;
}

let id = 0;
const started = Date.now();
const timer = setInterval(function tick() {
  for (let i = 0; i < 20; i++) handleRequest(id++);
  if (Date.now() - started > 3000) {
    clearInterval(timer);
    console.log('listener_leak: %d requests, %d listeners', id, configBus.listenerCount('config-change'));
  }
}, 10);
