// The Node closed-loop socketmap client (test/helpers/netstring-client.ts; `bench/policyd.ts --client node`): what
// it counts must be true. A real TCP server on loopback answers; some replies come in pieces, some are wrong.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { eventually } from '../fixtures/serve/helpers.js';
import { ClosedLoop, testMapResponder } from '../helpers/netstring-client.js';

let server: net.Server;
let port = 0;
/** Requests the server has read, in order. */
const seen: string[] = [];

before(async () => {
  server = net.createServer(testMapResponder(() => seen));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(() => server.close());

test('ClosedLoop counts replies, mismatches and latencies, and keeps one query in flight', async () => {
  const requests = ['postfix a.test', 'postfix split.test', 'postfix wrong.test'];
  const expected = ['OK a.test', 'OK split.test', 'OK wrong.test'];
  const latencies: number[] = [];
  seen.length = 0;
  const loop = await ClosedLoop.open({ host: '127.0.0.1', port }, requests, expected, (ns) =>
    latencies.push(ns),
  );
  loop.start();
  // Run until the requests went round twice (a count, not a duration; the wait is bounded).
  await eventually(() => (loop.completed >= 6 ? true : undefined), '6 replies');
  assert.equal(await loop.stop(), undefined);
  loop.close();

  // Round-robin, one at a time: the server saw exactly the answered requests (plus none in flight after stop).
  assert.equal(seen.length, loop.completed);
  assert.deepEqual(
    seen,
    Array.from({ length: seen.length }, (_, i) => requests[i % requests.length]),
  );
  // Every third reply (wrong.test) differs from what was expected; the split replies were put back together.
  assert.equal(loop.mismatches, Math.floor(loop.completed / 3));
  assert.equal(latencies.length, loop.completed);
  // A split reply takes at least the 10 ms between its first and last piece.
  assert.ok(latencies[1]! >= 9_000_000, `split reply latency ${latencies[1]} ns`);
  assert.ok(latencies[0]! > 0);
});

test('ClosedLoop reports a server that hangs up as an error from stop()', async () => {
  const rude = net.createServer((socket) => socket.once('data', () => socket.destroy()));
  await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
  const { port: rudePort } = rude.address() as net.AddressInfo;
  const loop = await ClosedLoop.open(
    { host: '127.0.0.1', port: rudePort },
    ['postfix a.test'],
    ['OK'],
    () => {},
  );
  loop.start();
  const error = await loop.stop(); // stop waits for the query in flight: here the hang-up
  loop.close();
  rude.close();
  assert.match(String(error?.message), /closed by the server/);
  assert.equal(loop.completed, 0);
});
