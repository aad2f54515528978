// The thread of a report decoder pool (report-decoder.ts): runs its DecodeJobs one after the other, in
// the order sent (the pool may send several ahead and times the first unanswered), and posts each
// DecodeReply. Says DECODER_READY once loaded.
import { parentPort } from 'node:worker_threads';
import { DECODER_READY, type DecodeJob, runDecodeJob } from './report-decoder.js';

const port = parentPort;
if (!port) throw new Error('report-decoder-worker.ts runs only as a worker thread');
let previous: Promise<void> = Promise.resolve();
port.on('message', (job: DecodeJob) => {
  // runDecodeJob never throws.
  previous = previous.then(() => runDecodeJob(job)).then((reply) => port.postMessage(reply));
});
port.postMessage(DECODER_READY);
