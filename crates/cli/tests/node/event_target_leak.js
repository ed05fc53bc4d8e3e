// A web-style listener leak: every job adds an 'abort' listener to one long-lived
// EventTarget (the shutdown signal) and never removes it; each listener's closure keeps the
// job's results alive (allocated in `watchShutdown`, or in the function V8 inlined it into).
// Runs about 3 seconds.
// expect listener-leak EventTarget abort watchShutdown
// expect growing-site watchShutdown runJob tick
'use strict';

const shutdown = new EventTarget();

function watchShutdown(job) {
  const results = new Array(2000).fill(job.id); // kept alive by the closure below
  shutdown.addEventListener('abort', function onShutdown() {
    return results.length + job.id;
  });
}

function runJob(id) {
  const job = { id, name: 'job-' + id };
  watchShutdown(job);
  return job.name.length;
}

let id = 0;
const started = Date.now();
const timer = setInterval(function tick() {
  for (let i = 0; i < 20; i++) runJob(id++);
  if (Date.now() - started > 3000) {
    clearInterval(timer);
    console.log('event_target_leak: %d jobs', id);
  }
}, 10);
