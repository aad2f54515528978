// The thread of a report decoder pool (report-decoder.ts): takes one DecodeJob at a time and posts
// its DecodeReply. Says DECODER_READY once loaded.
import { parentPort } from 'node:worker_threads';
import { DECODER_READY, type DecodeJob, runDecodeJob } from './report-decoder.js';

const port = parentPort;
if (!port) throw new Error('report-decoder-worker.ts runs only as a worker thread');
port.on('message', (job: DecodeJob) => {
  void runDecodeJob(job).then((reply) => port.postMessage(reply));
});
port.postMessage(DECODER_READY);
