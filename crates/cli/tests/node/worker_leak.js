// A worker thread keeps every job it is sent in a list it never clears; the main thread
// only sends jobs. The worker's isolate has the growing site (in `keepJob`, or in `onJob` if V8
// inlined it there), the main thread's has none.
// Runs about 3 seconds.
// expect worker-growing-site keepJob onJob
'use strict';
const { Worker, isMainThread, parentPort } = require('worker_threads');

if (isMainThread) {
  const worker = new Worker(__filename);
  let sent = 0;
  const started = Date.now();
  const timer = setInterval(() => {
    for (let i = 0; i < 100; i++) worker.postMessage({ id: sent++ });
    if (Date.now() - started > 3000) {
      clearInterval(timer);
      worker.postMessage('stop');
    }
  }, 10);
  worker.on('exit', () => console.log('worker_leak: %d jobs sent', sent));
} else {
  const kept = [];
  function keepJob(job) {
    kept.push({ job, received: Date.now(), log: new Array(200).fill(job.id) });
  }
  parentPort.on('message', function onJob(message) {
    if (message === 'stop') {
      parentPort.close();
      return;
    }
    keepJob(message);
  });
}
