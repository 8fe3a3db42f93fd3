// Event stream consumers for the stream benchmark, in their own process so
// reading 200 streams does not slow the load generator's event loop. Counts
// the events (`id:` lines) each stream receives and samples delivery latency
// (receive time − the event's updated_at; same machine clock). Driven over IPC
// by bench/load/event-stream.bench.ts.
const { request } = require('node:http');

const streams = [];
let events = 0;
let latencies = [];

function open(url, headers, count) {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve, reject) => {
          const req = request(url, { headers, agent: false }, (res) => {
            if (res.statusCode !== 200) return reject(new Error(`stream refused: ${res.statusCode}`));
            res.setEncoding('utf8');
            let partial = '';
            res.on('data', (chunk) => {
              const text = partial + chunk;
              const end = text.lastIndexOf('\n\n');
              partial = end === -1 ? text : text.slice(end + 2);
              if (end === -1) return;
              const frames = text.slice(0, end);
              for (let at = frames.indexOf('id: '); at !== -1; at = frames.indexOf('\nid: ', at + 1)) {
                events++;
                // One event in 64: parse its updated_at for a latency sample.
                if ((events & 63) === 0) {
                  const stamp = /"updated_at":"([^"]+)"/.exec(frames.slice(at, at + 400));
                  if (stamp) latencies.push(Date.now() - Date.parse(stamp[1]));
                }
              }
            });
            resolve();
          });
          streams.push(req);
          req.on('error', reject);
          req.end();
        }),
    ),
  );
}

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

process.on('message', async (message) => {
  if (message.type === 'open') {
    try {
      await open(message.url, message.headers, message.count);
      process.send({ type: 'opened' });
    } catch (error) {
      process.send({ type: 'failed', error: error.message });
    }
  } else if (message.type === 'reset') {
    events = 0;
    latencies = [];
    process.send({ type: 'reset' });
  } else if (message.type === 'report') {
    process.send({ type: 'report', events, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) });
  } else if (message.type === 'close') {
    for (const req of streams) req.destroy();
    process.exit(0);
  }
});
