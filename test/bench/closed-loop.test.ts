// The benchmark's native closed-loop client (bench/closed-loop.c): what it counts must be true, or
// BENCHMARKS.md is wrong. Real servers on loopback (TCP and a UNIX socket) answer; some replies come in
// pieces, some are wrong; one server hangs up.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildClosedLoop, NativeClosedLoop } from '../../bench/closed-loop.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { type Endpoint, encodeNetstring, testMapResponder } from '../helpers/netstring-client.js';

let dir: string;
let binary: string;
const servers: net.Server[] = [];
/** Requests each server has read, in order, per connection. */
const seen: string[][] = [];

/** Each connection's requests in its own array. */
const answer = testMapResponder(() => {
  const mine: string[] = [];
  seen.push(mine);
  return mine;
});

async function listen(handler: (socket: net.Socket) => void, where: net.ListenOptions): Promise<net.Server> {
  const server = net.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(where, resolve));
  return server;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mxguard-closed-loop-'));
  binary = buildClosedLoop(dir);
});

after(() => {
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

const queries = [
  { request: 'postfix a.test', expected: 'OK a.test' },
  { request: 'postfix split.test', expected: 'OK split.test' },
  { request: 'postfix wrong.test', expected: 'OK wrong.test' },
];

for (const transport of ['tcp', 'unix'] as const) {
  test(`closed-loop counts replies, mismatches and latencies over ${transport}, one query in flight per connection`, async () => {
    seen.length = 0;
    let endpoint: Endpoint;
    if (transport === 'tcp') {
      const server = await listen(answer, { host: '127.0.0.1', port: 0 });
      endpoint = { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
    } else {
      endpoint = { path: join(dir, 'server.sock') };
      await listen(answer, { path: endpoint.path });
    }
    const latenciesFile = join(dir, `latencies-${transport}`);
    const loop = await NativeClosedLoop.start(binary, endpoint, 2, queries, dir, latenciesFile);
    // Connected, but nothing is sent before go (an absence: there is no event to wait for, so a pause).
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(seen.flat().length, 0);
    loop.go();
    // Run until each connection has gone round the queries twice (no duration: a count, bounded wait).
    await eventually(
      () => (seen.length === 2 && seen.every((r) => r.length >= 6) ? true : undefined),
      '6 queries per connection',
    );
    const result = await loop.stop();

    assert.equal(result.error, null);
    assert.ok(result.seconds > 0, `seconds ${result.seconds}`);
    // Two connections, each round-robin from its own start (connection i at query i), one at a time.
    assert.equal(seen.length, 2);
    for (const [i, requests] of seen.entries()) {
      assert.deepEqual(
        requests,
        requests.map((_, k) => queries[(i + k) % queries.length]!.request),
      );
    }
    // Replies that arrived after stop (at most one per connection) are awaited but not counted.
    const sent = seen.flat().length;
    assert.ok(
      sent >= result.completed && sent <= result.completed + 2,
      `${sent} sent, ${result.completed} counted`,
    );
    // Every wrong.test reply is a mismatch; the split replies were put back together and matched.
    const wrong = seen.flat().filter((r) => r === 'postfix wrong.test').length;
    assert.ok(
      result.mismatches >= wrong - 2 && result.mismatches <= wrong,
      `${result.mismatches} mismatches for ${wrong} wrong.test requests`,
    );
    const latencies = readFileSync(latenciesFile);
    assert.equal(latencies.length, result.completed * 8);
    const values = Array.from({ length: result.completed }, (_, i) =>
      Number(latencies.readBigUInt64LE(i * 8)),
    );
    // A split reply takes at least the 10 ms between its first and last piece; the others are far quicker.
    assert.ok(values.some((ns) => ns >= 9_000_000));
    assert.ok(values.every((ns) => ns > 0));
    const sorted = [...values].sort((a, b) => a - b);
    assert.equal(result.p50Ns, sorted[Math.floor(0.5 * sorted.length)]);
    assert.equal(result.p99Ns, sorted[Math.floor(0.99 * sorted.length)]);
  });
}

test('closed-loop reports a server that hangs up as an error', async () => {
  const rude = await listen((socket) => socket.once('data', () => socket.destroy()), {
    host: '127.0.0.1',
    port: 0,
  });
  const endpoint = { host: '127.0.0.1', port: (rude.address() as net.AddressInfo).port };
  const loop = await NativeClosedLoop.start(binary, endpoint, 1, queries, dir);
  loop.go();
  const result = await loop.stop(); // stop waits for the query in flight (the hang-up)
  assert.match(String(result.error), /closed by the server/);
  assert.equal(result.completed, 0);
});

test('closed-loop reports a malformed reply and a reply nobody asked for', async () => {
  const garbage = await listen((socket) => socket.once('data', () => socket.write('x:OK,')), {
    host: '127.0.0.1',
    port: 0,
  });
  let loop = await NativeClosedLoop.start(
    binary,
    { host: '127.0.0.1', port: (garbage.address() as net.AddressInfo).port },
    1,
    queries,
    dir,
  );
  loop.go();
  assert.match(String((await loop.stop()).error), /malformed reply length/); // stop waits for the reply

  const chatty = await listen((socket) => socket.write(encodeNetstring('OK early')), {
    host: '127.0.0.1',
    port: 0,
  });
  loop = await NativeClosedLoop.start(
    binary,
    { host: '127.0.0.1', port: (chatty.address() as net.AddressInfo).port },
    1,
    queries,
    dir,
  );
  // The early reply must arrive before go (after go it would be taken for the answer); nothing outside
  // the client shows that it did, so a pause.
  await new Promise((resolve) => setTimeout(resolve, 100));
  loop.go();
  assert.match(String((await loop.stop()).error), /no query outstanding/);
});

test('closed-loop refuses to start when it cannot connect', async () => {
  await assert.rejects(
    NativeClosedLoop.start(binary, { path: join(dir, 'nobody.sock') }, 1, queries, dir),
    /cannot connect to the UNIX socket/,
  );
});
