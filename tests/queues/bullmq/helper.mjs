// Drives the BullMQ scenario through BullMQ's own API (tests/queues/bullmq_scenario.py):
//   node helper.mjs VERSION PORT worker QUEUE NAME     a Worker (concurrency 1, metrics on)
//   node helper.mjs VERSION PORT produce-done           jobs that complete and fail
//   node helper.mjs VERSION PORT produce-rest           long, waiting, delayed, prioritized,
//                                                       flow parent, paused queue
//   node helper.mjs VERSION PORT counts QUEUE...        BullMQ's own counts as JSON
// VERSION 5 or 6: the npm aliases bullmq5 and bullmq6 (package.json).
const [version, port, command, ...args] = process.argv.slice(2);
const { Queue, Worker, FlowProducer } = await import(version === '5' ? 'bullmq5' : 'bullmq6');
const connection = { host: '127.0.0.1', port: Number(port) };

if (command === 'worker') {
  const [queue, name] = args;
  const worker = new Worker(queue, async (job) => {
    if (job.name === 'fail') throw new Error('boom');
    if (job.name === 'long') await new Promise((resolve) => setTimeout(resolve, 600_000));
    return 1;
  }, { connection, concurrency: 1, name, metrics: { maxDataPoints: 60 } });
  await worker.waitUntilReady();
  console.log('worker ready');
} else if (command === 'produce-done') {
  const q = new Queue('render', { connection });
  for (let i = 0; i < 3; i++) await q.add('ok', { i });
  for (let i = 0; i < 2; i++) await q.add('fail', { i }, { attempts: 1 });
  await q.close();
} else if (command === 'produce-rest') {
  const q = new Queue('render', { connection });
  await q.add('long', {});
  for (let i = 0; i < 3; i++) await q.add('plain', { i });
  for (let i = 0; i < 2; i++) await q.add('later', { i }, { delay: 3_600_000 });
  for (let i = 0; i < 2; i++) await q.add('low', { i }, { priority: 50 });
  await q.add('urgent', {}, { priority: 1 });
  const flow = new FlowProducer({ connection });
  await flow.add({ name: 'parent', queueName: 'render', children: [{ name: 'child', queueName: 'children', data: {} }] });
  await flow.close();
  // A paused queue: paused first, then jobs added (BullMQ 5 puts them in its paused list,
  // BullMQ 6 in wait behind the meta flag), one of them prioritized.
  const p = new Queue('thumbnails', { connection });
  await p.pause();
  for (let i = 0; i < 3; i++) await p.add('thumb', { i });
  await p.add('thumb-urgent', {}, { priority: 2 });
  await q.close();
  await p.close();
} else if (command === 'counts') {
  const out = {};
  for (const name of args) {
    const q = new Queue(name, { connection });
    const types = version === '5' ? ['wait', 'paused', 'prioritized'] : ['wait', 'prioritized'];
    const waiting = await q.getJobs(types);
    const completed = await q.getMetrics('completed');
    const failed = await q.getMetrics('failed');
    out[name] = {
      counts: await q.getJobCounts(),
      paused: await q.isPaused(),
      workers: await q.getWorkersCount(),
      completed: completed.meta.count,
      failed: failed.meta.count,
      oldest: waiting.length ? Math.min(...waiting.map((j) => j.timestamp)) : null,
    };
    await q.close();
  }
  console.log(JSON.stringify(out));
} else {
  console.error('unknown command ' + command);
  process.exit(2);
}
if (command !== 'worker') process.exit(0);
