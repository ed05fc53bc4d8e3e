// leakscope's preload for Node.js: `leakscope run` adds `--require <this file>` to
// NODE_OPTIONS (docs/decisions/0014-node.md). In every isolate (the main thread and each
// worker thread) it
//   - starts V8's sampling heap profiler through an in-process inspector session (no port is
//     opened) and, every LEAKSCOPE_NODE_INTERVAL_MS, writes the live bytes per JavaScript
//     allocation site that the profiler's samples stand for;
//   - counts EventEmitter and EventTarget listeners (`on`, `addEventListener`) per emitter
//     class and event, with the stacks that added them (the first 16 of each pair, then one
//     in 64);
//   - writes V8 heap snapshots to files beside its records (at the 10th, 20th, 40th...
//     sample, keeping the last two), unless the heap is above SETTINGS.snapshot_limit;
//     leakscope compares the last two offline (the constructors that grew between them,
//     with their retainer paths);
// as JSON lines appended to SETTINGS.out + '.' + pid, which leakscope moves into the
// profile when the program ends. Nothing here may change what the program does: every hook catches its
// own errors, the timer does not keep the process alive, and the program's own NODE_OPTIONS
// is put back for the programs it starts.
'use strict';
(function leakscopePreload() {
  // Written in by `leakscope run` (crates/cli/src/node.rs) when it writes this file for a run:
  // { out, interval_ms, sampling_bytes, snapshot_limit, node_options, follow_children, agent }.
  const SETTINGS = /*LEAKSCOPE_SETTINGS*/ null;
  if (SETTINGS === null) return;
  const fs = require('fs');
  const { isMainThread, threadId } = require('worker_threads');
  // Only a process that leakscope's agent watches is recorded: without --follow-children a
  // node started by the program runs untracked, as every other program it starts does.
  try {
    if (!fs.readFileSync('/proc/self/maps', 'utf8').includes(SETTINGS.agent)) return;
  } catch (e) {
    return;
  }
  if (isMainThread && !SETTINGS.follow_children) {
    // The programs this one starts see the NODE_OPTIONS it was given, not ours.
    if (SETTINGS.node_options === null) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = SETTINGS.node_options;
  }
  const v8 = require('v8');
  const inspector = require('inspector');
  const EventEmitter = require('events');
  const out = SETTINGS.out + '.' + process.pid;
  const samplingBytes = SETTINGS.sampling_bytes;
  let intervalMs = SETTINGS.interval_ms;

  let fd;
  try {
    fd = fs.openSync(out, 'a');
  } catch (e) {
    return;
  }
  function write(record) {
    try {
      fs.writeSync(fd, JSON.stringify(record) + '\n');
    } catch (e) {
      // The file is gone or full: the program goes on without us.
    }
  }

  // ---- the sampling heap profiler ----

  let session = null;
  try {
    session = new inspector.Session();
    session.connect();
    let error = null;
    session.post('HeapProfiler.startSampling', { samplingInterval: samplingBytes }, (e) => { error = e; });
    if (error) throw error;
  } catch (e) {
    write({ k: 'error', th: threadId, t: Date.now(), what: 'heap profiler', message: String(e && e.message || e) });
    session = null;
  }
  const heap = v8.getHeapStatistics();
  write({
    k: 'start', th: threadId, t: Date.now(), pid: process.pid, node: process.version,
    heap_limit: heap.heap_size_limit, sampling_bytes: samplingBytes, interval_ms: intervalMs,
    main: isMainThread, argv: isMainThread ? process.argv.slice(1) : [],
  });

  const siteIds = new Map();
  function siteId(frames) {
    const key = frames.map((f) => f.join('\u0001')).join('\u0002');
    let id = siteIds.get(key);
    if (id === undefined) {
      id = siteIds.size + 1;
      siteIds.set(key, id);
      write({ k: 'site', th: threadId, id: id, frames: frames });
    }
    return id;
  }
  function frameOf(callFrame) {
    // The inspector's lines and columns count from 0; reports count from 1.
    return [callFrame.functionName || '(anonymous)', callFrame.url || '', callFrame.lineNumber + 1, callFrame.columnNumber + 1];
  }
  // The last sample (at 'exit' or at a fatal signal) is marked: by then the program may have
  // dropped everything, which says nothing about how it grew while it ran.
  let finalSample = false;
  function heapSample(now) {
    if (session === null) return;
    let profile = null;
    session.post('HeapProfiler.getSamplingProfile', (e, result) => { if (!e) profile = result.profile; });
    if (profile === null) return;
    const sites = [];
    // Depth first from the root; `path` holds the frames from the outermost one.
    const stack = [[profile.head, []]];
    while (stack.length) {
      const [node, path] = stack.pop();
      const here = node === profile.head ? path : path.concat([frameOf(node.callFrame)]);
      // What this file allocates (the inspector's messages) is ours, not the program's.
      if (node.callFrame.url === __filename) continue;
      if (node.selfSize > 0 && here.length > 0) {
        sites.push([siteId(here.slice().reverse()), node.selfSize]);
      }
      for (const child of node.children) stack.push([child, here]);
    }
    const stats = v8.getHeapStatistics();
    write({ k: 'heap', th: threadId, t: now, used: stats.used_heap_size, limit: stats.heap_size_limit, final: finalSample, sites: sites });
  }

  // ---- listeners ----

  const proto = EventEmitter.prototype;
  const originalAdd = proto.addListener;
  const originalPrepend = proto.prependListener;
  const emitters = new Set();
  const seen = new WeakSet();
  const adds = new Map(); // "class\0event" -> { emitter, event, adds, stacks: Map(id -> count) }
  const stackIds = new Map();
  const STACKS_FIRST = 16;
  const STACKS_EVERY = 64;
  function className(emitter) {
    const ctor = emitter && emitter.constructor;
    return (ctor && ctor.name) || 'EventEmitter';
  }
  function eventName(type) {
    return typeof type === 'symbol' ? type.toString() : String(type);
  }
  function callerFrames(hook) {
    const prepare = Error.prepareStackTrace;
    const limit = Error.stackTraceLimit;
    let sites = [];
    try {
      Error.prepareStackTrace = (_, callSites) => callSites;
      Error.stackTraceLimit = 32;
      const holder = {};
      Error.captureStackTrace(holder, hook);
      sites = holder.stack || [];
    } finally {
      Error.prepareStackTrace = prepare;
      Error.stackTraceLimit = limit;
    }
    return sites.map((c) => [c.getFunctionName() || '(anonymous)', c.getFileName() || '', c.getLineNumber() || 0, c.getColumnNumber() || 0]);
  }
  function noteAdd(emitter, type, hook) {
    try {
      if (!seen.has(emitter)) {
        seen.add(emitter);
        emitters.add(new WeakRef(emitter));
      }
      const emitterClass = className(emitter);
      const event = eventName(type);
      const key = emitterClass + '\u0000' + event;
      let entry = adds.get(key);
      if (entry === undefined) {
        entry = { emitter: emitterClass, event: event, adds: 0, stacks: new Map() };
        adds.set(key, entry);
      }
      entry.adds++;
      if (entry.adds <= STACKS_FIRST || entry.adds % STACKS_EVERY === 0) {
        const frames = callerFrames(hook);
        const stackKey = key + '\u0000' + frames.map((f) => f.join('\u0001')).join('\u0002');
        let id = stackIds.get(stackKey);
        if (id === undefined) {
          id = stackIds.size + 1;
          stackIds.set(stackKey, id);
          write({ k: 'lstack', th: threadId, id: id, emitter: emitterClass, event: event, frames: frames });
        }
        entry.stacks.set(id, (entry.stacks.get(id) || 0) + 1);
      }
    } catch (e) {
      // An emitter we cannot describe is not counted.
    }
  }
  function addListener(type, listener) {
    noteAdd(this, type, addListener);
    return originalAdd.call(this, type, listener);
  }
  function prependListener(type, listener) {
    noteAdd(this, type, prependListener);
    return originalPrepend.call(this, type, listener);
  }
  proto.addListener = addListener;
  proto.on = addListener;
  proto.prependListener = prependListener;

  // EventTarget (AbortSignal, MessagePort, BroadcastChannel, EventTarget itself): web-style
  // listeners. An EventTarget cannot list its event types, so the types added to each are
  // kept beside it; `events.getEventListeners` (Node 15.2 and later) counts them, and a
  // listener added twice (which the web's rules ignore) is counted once, as it is there.
  const targetTypes = new WeakMap(); // target -> Set of event types
  const getEventListeners = EventEmitter.getEventListeners;
  if (typeof EventTarget === 'function' && typeof getEventListeners === 'function') {
    const targetProto = EventTarget.prototype;
    const originalAddEvent = targetProto.addEventListener;
    // Declared with the original's two parameters (its `length`); the options, and anything
    // else, are passed on as given.
    function addEventListener(type, listener) {
      noteAdd(this, type, addEventListener);
      try {
        let types = targetTypes.get(this);
        if (types === undefined) {
          types = new Set();
          targetTypes.set(this, types);
        }
        types.add(type);
      } catch (e) {
        // A target we cannot describe is not counted.
      }
      return originalAddEvent.apply(this, arguments);
    }
    targetProto.addEventListener = addEventListener;
  }
  // (event name, listeners now) of an emitter or event target.
  function listenersOf(emitter) {
    const types = targetTypes.get(emitter);
    if (types !== undefined && typeof emitter.eventNames !== 'function') {
      return Array.from(types, (type) => [type, getEventListeners(emitter, type).length]);
    }
    return emitter.eventNames().map((name) => [name, emitter.listenerCount(name)]);
  }

  function listenerSample(now) {
    const counts = new Map();
    for (const ref of emitters) {
      const emitter = ref.deref();
      if (emitter === undefined) {
        emitters.delete(ref);
        continue;
      }
      try {
        const emitterClass = className(emitter);
        for (const [name, listeners] of listenersOf(emitter)) {
          const key = emitterClass + '\u0000' + eventName(name);
          counts.set(key, (counts.get(key) || 0) + listeners);
        }
      } catch (e) {
        // skip it
      }
    }
    const rows = [];
    for (const [key, entry] of adds) {
      rows.push([entry.emitter, entry.event, counts.get(key) || 0, entry.adds, Array.from(entry.stacks)]);
    }
    write({ k: 'listeners', th: threadId, t: now, emitters: emitters.size, final: finalSample, counts: rows });
  }

  // ---- heap snapshots ----

  // A snapshot stops the isolate for a time proportional to its heap (decision 0014 has the
  // figures), so there are few: at the 10th sample (the warm-up is over, and the verdicts,
  // which need 8 samples of a series, have them before the first pause), then the 20th,
  // 40th, 80th..., and only the last two are kept (each new one deletes the one before the
  // last) and compared: what was allocated in the second half of the run so far and is
  // still alive, so that a long run's warm-up (caches filling) is left behind, at a cost
  // that halves as the run goes on. A run shorter than 20 samples has one, and nothing to
  // compare. None at the isolate's end: by the `exit` event a script's module scope is
  // often unreachable already, and a snapshot (which collects garbage first) would not see
  // what it kept. None while the used heap is above the limit.
  // v8.writeHeapSnapshot serializes in C++ straight to the file: the inspector's
  // HeapProfiler.takeHeapSnapshot hands each chunk to this isolate as a string first, which
  // is slower and allocates in the heap being measured. leakscope parses the files after the
  // program ended (and deletes them): the program's heap never holds a parsed snapshot.
  const FIRST_SNAPSHOT_SAMPLE = 10;
  const snapshotLimit = SETTINGS.snapshot_limit;
  let snapshotsTaken = 0;
  const snapshotFiles = []; // the last two
  let snapshotsStopped = snapshotLimit === 0 || typeof v8.writeHeapSnapshot !== 'function';
  function isSnapshotSample(n) {
    // 10, 20, 40...
    const times = n / FIRST_SNAPSHOT_SAMPLE;
    return n >= FIRST_SNAPSHOT_SAMPLE && Number.isInteger(times) && (times & (times - 1)) === 0;
  }
  function heapSnapshot() {
    if (snapshotsStopped || ended) return;
    const n = snapshotsTaken + 1;
    const record = { k: 'snapshot', th: threadId, t: Date.now(), n: n, used: 0, limit: snapshotLimit };
    try {
      const used = record.used = v8.getHeapStatistics().used_heap_size;
      if (used > snapshotLimit) {
        const mib = (bytes) => (bytes / 1048576).toFixed(1) + ' MiB';
        record.skipped = 'the V8 heap (' + mib(used) + ' used) is above the limit of ' + mib(snapshotLimit) + ' (--js-heap-snapshot-limit)';
        snapshotsStopped = true; // it rarely shrinks back: one note is enough
      } else {
        const file = out + '.' + threadId + '.' + n + '.heapsnapshot';
        const began = process.hrtime.bigint();
        v8.writeHeapSnapshot(file);
        record.pause_ms = Number(process.hrtime.bigint() - began) / 1e6;
        record.file = file;
        snapshotsTaken = n;
        snapshotFiles.push(file);
        if (snapshotFiles.length > 2) {
          try { fs.unlinkSync(snapshotFiles.shift()); } catch (e) { /* gone already */ }
        }
      }
    } catch (e) {
      record.skipped = 'the snapshot failed: ' + String(e && e.message || e);
      snapshotsStopped = true;
    }
    write(record);
  }

  let ended = false;
  function sample() {
    if (ended) return;
    const now = Date.now();
    try {
      heapSample(now);
      listenerSample(now);
    } catch (e) {
      write({ k: 'error', th: threadId, t: now, what: 'sample', message: String(e && e.message || e) });
    }
  }
  // As the agent's snapshots: the interval doubles every 100 samples, so that a long run
  // has a bounded record.
  let samples = 0;
  function tick() {
    sample();
    samples++;
    if (samples % 100 === 0) intervalMs *= 2;
    if (isSnapshotSample(samples) && !ended) {
      // In a task of its own: the sample's WeakRef.deref() of the emitters keeps them
      // alive until the end of the current task (and a snapshot would show them held by
      // V8's `weak_refs_keep_during_job`), and the timer machinery would be on the stack.
      setImmediate(() => {
        heapSnapshot(); // catches its own errors
        setTimeout(tick, intervalMs).unref();
      }).unref();
      return;
    }
    setTimeout(tick, intervalMs).unref();
  }
  setTimeout(tick, 0).unref();

  function finish(how) {
    if (ended) return;
    finalSample = true;
    sample();
    ended = true;
    write({ k: 'end', th: threadId, t: Date.now(), how: how });
    try { fs.closeSync(fd); } catch (e) { /* closed already */ }
  }
  // (Our own listeners are added with the original function: they are not the program's.)
  originalAdd.call(process, 'exit', () => finish('exit'));
  // A signal that would end the program (leakscope's --duration sends SIGTERM) ends it
  // without an 'exit' event: take the last sample, then end it the same way, unless the
  // program has its own handler, which then decides.
  if (isMainThread) {
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
      const onSignal = () => {
        if (process.listenerCount(signal) > 1) return;
        finish(signal);
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      };
      originalAdd.call(process, signal, onSignal);
    }
  }
})();
