// Preloaded into a benchmark server (`--import`) by bench/connect-alloc.ts; plain JavaScript so the
// compiled server and the minimal one (run through tsx) load it alike. SIGURG (ignored by default,
// used by neither server) starts a window; the next SIGURG ends it and writes what the window
// allocated and what its garbage collections paused to $ALLOC_SAMPLER_OUT as JSON.
//
// Allocations: V8's sampling heap profiler, about one sample per SAMPLE_BYTES, weighted by its size.
// The first window keeps the samples of objects the collector has freed since, so garbage counts
// as well as what stays: every allocation. Every later window counts only what is still alive when
// it ends (the harness collects the garbage first): the bytes its streams keep. GC pauses: the
// perf_hooks `gc` entries of the window.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';

const SAMPLE_BYTES = 512;
const out = process.env.ALLOC_SAMPLER_OUT;
const session = new Session();
session.connect();
let sampling;
let windows = 0;

/** Recent GC pauses (start, duration, minor?): the observer is told of them a little later. */
const pauses = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    pauses.push({ at: entry.startTime, ms: entry.duration, minor: entry.detail?.kind === 1 });
  }
  if (pauses.length > 20_000) pauses.splice(0, pauses.length - 10_000);
});
gcObserver.observe({ entryTypes: ['gc'] });

function pausesBetween(start, end) {
  const within = pauses.filter((pause) => pause.at >= start && pause.at <= end);
  return {
    count: within.length,
    minor: within.filter((pause) => pause.minor).length,
    pauseMs: within.reduce((sum, pause) => sum + pause.ms, 0),
    longestMs: within.reduce((longest, pause) => Math.max(longest, pause.ms), 0),
  };
}

/** Where a frame's code lives: a package, Node itself, or a file of ours. */
function origin(url) {
  if (url === '') return '(V8 and native)';
  if (url.startsWith('node:')) return 'node';
  const at = url.lastIndexOf('node_modules/');
  if (at !== -1) {
    const rest = url.slice(at + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  return url.split('/').slice(-2).join('/');
}

function summarize(profile) {
  const byOrigin = new Map();
  const byFunction = new Map();
  let total = 0;
  const walk = (node, parentOrigin) => {
    const { functionName, url, lineNumber } = node.callFrame;
    // Native frames (a constructor, JSON.parse) allocate for the code that called them.
    const own = url === '' && parentOrigin !== undefined ? parentOrigin : origin(url);
    if (node.selfSize > 0) {
      total += node.selfSize;
      byOrigin.set(own, (byOrigin.get(own) ?? 0) + node.selfSize);
      const name = `${functionName || '(anonymous)'} ${url === '' ? own : `${origin(url)}:${lineNumber + 1}`}`;
      byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, own);
  };
  walk(profile.head, undefined);
  const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
  return { bytes: total, byOrigin: top(byOrigin, 40), byFunction: top(byFunction, 40) };
}

process.on('SIGURG', () => {
  if (sampling === undefined) {
    sampling = { start: performance.now() };
    const garbageToo = ++windows === 1;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: SAMPLE_BYTES,
      includeObjectsCollectedByMinorGC: garbageToo,
      includeObjectsCollectedByMajorGC: garbageToo,
    });
    return;
  }
  const { start } = sampling;
  const end = performance.now();
  sampling = undefined;
  session.post('HeapProfiler.stopSampling', (error, result) => {
    // The sampling's last GC entries reach the observer after this turn.
    setTimeout(() => {
      const report = error ? { error: String(error) } : { ...summarize(result.profile), gc: pausesBetween(start, end) };
      if (out === undefined) return;
      // Renamed into place: the benchmark waits for the file to exist, then reads it whole.
      writeFileSync(`${out}.part`, JSON.stringify(report));
      renameSync(`${out}.part`, out);
    }, 200);
  });
});
