// The snippet from README.md ("Web Vitals snippet"), as the demo page runs it. The only
// difference: the exporter's origin comes from a <meta> tag the test server fills in.
import {onLCP, onINP, onCLS, onFCP, onTTFB} from 'web-vitals';

const INGEST = document.querySelector('meta[name="apphealth-ingest"]').content;

// One id per page load, shared by its metrics: the exporter counts page views with it.
const pageViewId = self.crypto && crypto.randomUUID
  ? crypto.randomUUID()
  : Date.now().toString(36) + Math.random().toString(36).slice(2);

// sendBeacon survives the page being unloaded; a string body goes as text/plain, which needs
// no CORS preflight. fetch with keepalive is the fallback (also when sendBeacon refuses).
function send(url, body) {
  if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
  fetch(url, {method: 'POST', body, keepalive: true, headers: {'Content-Type': 'text/plain'}})
    .catch(() => {});
}

// The library's batching recipe: queue metrics, flush when the page is hidden.
const queue = new Set();
function addToQueue(metric) {
  queue.add(metric);
}

function flushQueue() {
  if (queue.size === 0) return;
  // Only the fields the exporter reads (entries/attribution would just add bytes).
  const body = JSON.stringify([...queue].map((m) => ({
    name: m.name,
    value: m.value,
    rating: m.rating,
    delta: m.delta,
    id: m.id,
    navigationType: m.navigationType,
    page: location.pathname,
    pageViewId,
  })));
  send(INGEST + '/ingest/vitals', body);
  queue.clear();
}

const options = {reportAllChanges: false};
onLCP(addToQueue, options);
onINP(addToQueue, options);
onCLS(addToQueue, options);
onFCP(addToQueue, options);
onTTFB(addToQueue, options);

addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flushQueue();
});

// Uncaught errors and unhandled promise rejections (level "global"). An error boundary calls
// reportError(error.message, 'component', 'TutorCard') or level 'page' for a route boundary.
export function reportError(message, level = 'global', component = undefined) {
  send(INGEST + '/ingest/errors', JSON.stringify({
    message: String(message).slice(0, 1024),
    level,
    component,
    page: location.pathname,
    severity: 'error',
  }));
}
addEventListener('error', (event) => reportError(event.message || 'error'));
addEventListener('unhandledrejection', (event) => {
  const reason = event.reason;
  reportError(reason && reason.message ? reason.message : reason);
});
