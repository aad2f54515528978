// The socketmap server on real sockets with a stub responder: framing across writes, pipelining in
// order, and hostile clients (malformed and oversized netstrings, bad requests, slow and idle clients,
// too many connections, a client that never reads, random bytes): the offender gets PERM and is
// closed, everyone else keeps being served.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { PolicydMetrics } from '../../src/policyd/metrics.js';
import { type Responder, SocketmapServer, type SocketmapServerOptions } from '../../src/policyd/server.js';
import { makeReply, NOTFOUND_REPLY, type Reply } from '../../src/policyd/socketmap.js';
import { eventually } from '../fixtures/serve/helpers.js';
import { SocketmapClient } from '../helpers/policyd-lab.js';

/** Cached answers for "fast.*" keys; "slow-N.*" keys are answered after N ms; "hang.*" never. */
class StubResponder implements Responder {
  lookups = 0;
  cached(key: string): Reply | undefined {
    return key.startsWith('fast.') ? makeReply('secure', `OK secure match=${key}`) : undefined;
  }
  lookup(key: string): Promise<Reply> {
    this.lookups++;
    if (key.startsWith('hang.')) return new Promise(() => {});
    const ms = Number(/^slow-(\d+)\./.exec(key)?.[1] ?? 0);
    return new Promise((resolve) => setTimeout(() => resolve(makeReply('dane', `OK dane ${key}`)), ms));
  }
}

const netstring = (text: string) => `${Buffer.byteLength(text)}:${text},`;

async function startServerWith(options: Partial<SocketmapServerOptions> = {}) {
  const responder = new StubResponder();
  const metrics = new PolicydMetrics();
  const server = new SocketmapServer({ responder, metrics, ...options });
  const { port } = await server.listenTcp('127.0.0.1', 0);
  return { server, responder, metrics, port };
}

/** Write raw bytes, collect everything until the server closes (or `ms`). */
function exchange(
  port: number,
  data: Array<string | Buffer>,
  ms = 5000,
): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let received = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ received, closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('data', (d) => (received += d));
    socket.on('error', () => {});
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      for (const chunk of data) socket.write(chunk);
    });
  });
}

// Every test runs on both read paths: the shared read buffer (the default) and 'data' events (the fallback).
for (const sharedReadBuffer of [true, false]) {
  describe(sharedReadBuffer ? 'shared read buffer' : "'data' events", () => {
    const startServer = (options: Partial<SocketmapServerOptions> = {}) =>
      startServerWith({ sharedReadBuffer, ...options });
    describe('serving', () => {
      let s: Awaited<ReturnType<typeof startServer>>;
      before(async () => {
        s = await startServer();
      });
      after(() => s.server.close());

      it('answers cached and looked-up keys', async () => {
        const client = await SocketmapClient.connect({ port: s.port });
        assert.equal(await client.query('fast.example'), 'OK secure match=fast.example');
        assert.equal(await client.query('other.example'), 'OK dane other.example');
        client.close();
      });

      it('reads a request written one byte at a time', async () => {
        const bytes = [...netstring('postfix fast.example')];
        const { received } = await exchange(s.port, bytes, 300);
        assert.equal(received, netstring('OK secure match=fast.example'));
      });

      it('answers pipelined requests in request order, whatever finishes first', async () => {
        const requests = ['slow-60.a', 'fast.b', 'slow-5.c', 'fast.d', 'slow-30.e'].map((k) =>
          netstring(`postfix ${k}`),
        );
        const { received } = await exchange(s.port, [requests.join('')], 500);
        assert.equal(
          received,
          [
            'OK dane slow-60.a',
            'OK secure match=fast.b',
            'OK dane slow-5.c',
            'OK secure match=fast.d',
            'OK dane slow-30.e',
          ]
            .map(netstring)
            .join(''),
        );
      });

      it('keeps the partial requests of connections apart (they share one read buffer)', async () => {
        const sockets = await Promise.all(
          ['a', 'b', 'c'].map(
            (name) =>
              new Promise<{ name: string; socket: net.Socket; received: () => string }>((resolve) => {
                const socket = net.connect({ port: s.port, host: '127.0.0.1' });
                let received = '';
                socket.on('data', (d) => (received += d));
                socket.on('connect', () => resolve({ name, socket, received: () => received }));
              }),
          ),
        );
        const requests = sockets.map(({ name }) => netstring(`postfix fast.${name.repeat(30)}`));
        // Every connection's request arrives in three pieces, interleaved with the others' pieces.
        for (const cut of [[0, 10], [10, 25], [25]] as const) {
          for (const [i, { socket }] of sockets.entries()) socket.write(requests[i]!.slice(...cut));
          // Gives the pieces a chance to arrive as separate reads (the order is what matters here).
          await new Promise((resolve) => setTimeout(resolve, 30));
        }
        for (const { name, socket, received } of sockets) {
          const reply = netstring(`OK secure match=fast.${name.repeat(30)}`);
          await eventually(
            () => (received().length >= reply.length ? true : undefined),
            `the reply to ${name}`,
          );
          assert.equal(received(), reply);
          socket.destroy();
        }
      });

      it('counts replies by kind in the metrics', async () => {
        const text = await s.metrics.registry.metrics();
        assert.match(text, /^mxguard_policyd_queries_total\{answer="secure"\} [1-9]/m);
        assert.match(text, /^mxguard_policyd_queries_total\{answer="dane"\} [1-9]/m);
      });
    });

    describe('metrics', () => {
      it('the latency histogram reads as prom-client would write it for the same observations', async () => {
        const buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1, 5, 10];
        await fc.assert(
          fc.asyncProperty(
            fc.array(
              fc.oneof(fc.constantFrom(...buckets, 0, 20), fc.double({ min: 0, max: 20, noNaN: true })),
              {
                maxLength: 50,
              },
            ),
            async (values) => {
              const ours = new PolicydMetrics();
              const registry = new Registry();
              const reference = new Histogram({
                name: 'mxguard_policyd_query_duration_seconds',
                help: 'Time from a complete request to its reply.',
                buckets,
                registers: [registry],
              });
              for (const v of values) {
                ours.answered(0, v);
                reference.observe(v);
              }
              const histogram = (text: string) =>
                text.split('\n').filter((line) => line.includes('mxguard_policyd_query_duration_seconds'));
              assert.deepEqual(histogram(await ours.registry.metrics()), histogram(await registry.metrics()));
            },
          ),
          { numRuns: 50 },
        );
      });
    });

    describe('hostile input: PERM, close, keep serving others', () => {
      let s: Awaited<ReturnType<typeof startServer>>;
      before(async () => {
        s = await startServer({ requestTimeoutMs: 200, idleTimeoutMs: 300 });
      });
      after(() => s.server.close());

      const cases: Array<[string, string, string]> = [
        ['non-digit length', '5x:hello,', 'PERM malformed netstring length'],
        ['empty length', ':hello,', 'PERM malformed netstring length'],
        ['missing comma', '5:hello!', 'PERM malformed netstring (no "," after the data)'],
        ['oversized length', '5000:', 'PERM request longer than 1089 bytes'],
        ['oversized key', netstring(`postfix ${'a'.repeat(1100)}`), 'PERM request longer than 1089 bytes'],
        ['no space', netstring('postfix'), 'PERM request is not "<name> <key>"'],
        ['empty name', netstring(' example.com'), 'PERM request is not "<name> <key>"'],
      ];
      for (const [name, bytes, reply] of cases) {
        it(name, async () => {
          const other = await SocketmapClient.connect({ port: s.port });
          const { received, closed } = await exchange(s.port, [bytes]);
          assert.equal(received, netstring(reply));
          assert.ok(closed, 'the connection is closed');
          assert.equal(await other.query('fast.ok'), 'OK secure match=fast.ok', 'others are still served');
          other.close();
        });
      }

      it('replies pending before the bad request still come first', async () => {
        const { received, closed } = await exchange(s.port, [`${netstring('postfix slow-30.a')}5x:`]);
        assert.equal(received, netstring('OK dane slow-30.a') + netstring('PERM malformed netstring length'));
        assert.ok(closed);
      });

      it('a request not completed in time: PERM and close', async () => {
        const { received, closed } = await exchange(s.port, ['20:postfix exa'], 3000);
        assert.equal(received, netstring('PERM request not completed in time'));
        assert.ok(closed);
      });

      it('a request dribbled byte by byte past the time limit is cut off', async () => {
        const socket = net.connect({ port: s.port, host: '127.0.0.1' });
        let received = '';
        socket.on('data', (d) => (received += d));
        socket.on('error', () => {});
        const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
        const text = `200:postfix ${'a'.repeat(192)},`;
        let i = 0;
        const timer = setInterval(() => {
          if (!socket.destroyed && i < text.length) socket.write(text[i++]!);
        }, 50);
        await closed;
        clearInterval(timer);
        assert.equal(received, netstring('PERM request not completed in time'));
        assert.ok(i < text.length);
      });

      it('an idle connection is closed', async () => {
        const client = await SocketmapClient.connect({ port: s.port });
        assert.equal(await client.query('fast.x'), 'OK secure match=fast.x');
        await client.closed;
      });

      it('counts protocol errors', async () => {
        const text = await s.metrics.registry.metrics();
        assert.match(text, /^mxguard_policyd_protocol_errors_total\{error="NETSTRING_LENGTH"\} [1-9]/m);
        assert.match(text, /^mxguard_policyd_protocol_errors_total\{error="REQUEST_TIMEOUT"\} [1-9]/m);
      });

      it('random bytes get replies or PERM, never crash the server', async () => {
        await fc.assert(
          fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
            const { received } = await exchange(s.port, [Buffer.from(bytes)], 400);
            assert.match(received, /^(\d+:(OK |NOTFOUND |PERM )[^,]*,)*$/);
          }),
          { numRuns: 40 },
        );
        const client = await SocketmapClient.connect({ port: s.port });
        assert.equal(await client.query('fast.after'), 'OK secure match=fast.after');
        client.close();
      });
    });

    describe('limits', () => {
      it('closes connections beyond maxConnections at once; the others keep working', async () => {
        const s = await startServer({ maxConnections: 20 });
        const clients = await Promise.all(
          Array.from({ length: 20 }, () => SocketmapClient.connect({ port: s.port })),
        );
        const extra = await SocketmapClient.connect({ port: s.port });
        await extra.closed;
        for (const [i, c] of clients.entries())
          assert.equal(await c.query(`fast.${i}`), `OK secure match=fast.${i}`);
        assert.equal(s.metrics.rejectedConnections, 1);
        for (const c of clients) c.close();
        await s.server.close();
      });

      it('serves a thousand connections at once', async () => {
        const s = await startServer();
        const clients = await Promise.all(
          Array.from({ length: 1000 }, () => SocketmapClient.connect({ port: s.port })),
        );
        const answers = await Promise.all(
          clients.map((c, i) => c.query(i % 2 ? `fast.${i}` : `slow-1.${i}`)),
        );
        for (const [i, a] of answers.entries())
          assert.equal(a, i % 2 ? `OK secure match=fast.${i}` : `OK dane slow-1.${i}`);
        assert.equal(s.server.connectionCount, 1000);
        for (const c of clients) c.close();
        await s.server.close();
      });

      it('a client that pipelines without end gets at most maxPipeline lookups started', async () => {
        const s = await startServer({ maxPipeline: 16 });
        const socket = net.connect({ port: s.port, host: '127.0.0.1' });
        socket.on('error', () => {});
        await new Promise((resolve) => socket.on('connect', resolve));
        const burst = netstring('postfix hang.example').repeat(5000);
        socket.write(burst);
        await eventually(() => (s.responder.lookups >= 16 ? true : undefined), '16 lookups');
        // Another client's whole round trip: the server had every chance to read on and start more.
        const other = await SocketmapClient.connect({ port: s.port });
        assert.equal(await other.query('fast.other'), 'OK secure match=fast.other');
        assert.equal(s.responder.lookups, 16);
        other.close();
        socket.destroy();
        await s.server.close();
      });

      it('close() sends pending replies before closing', async () => {
        const s = await startServer();
        const client = await SocketmapClient.connect({ port: s.port });
        const pending = client.query('slow-100.example');
        await eventually(() => (s.responder.lookups === 1 ? true : undefined), 'the lookup');
        const closing = s.server.close();
        assert.equal(await pending, 'OK dane slow-100.example');
        await closing;
        await client.closed;
      });
    });

    describe('UNIX socket', () => {
      const dir = mkdtempSync(join(tmpdir(), 'mxguard-policyd-sock-'));
      after(() => rmSync(dir, { recursive: true, force: true }));

      it('listens, replaces a stale socket file, refuses one in use, removes it on close', async () => {
        const path = join(dir, 'policyd.sock');
        // A stale socket: its process was killed, so nobody removed the file.
        spawnSync(process.execPath, [
          '-e',
          `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
        ]);
        assert.ok(statSync(path).isSocket());
        const server = new SocketmapServer({ responder: new StubResponder(), sharedReadBuffer });
        await server.listenUnix(path);
        const client = await SocketmapClient.connect({ path });
        assert.equal(await client.query('fast.unix'), 'OK secure match=fast.unix');
        const second = new SocketmapServer({ responder: new StubResponder(), sharedReadBuffer });
        await assert.rejects(second.listenUnix(path), /another process is listening/);
        client.close();
        await server.close();
        assert.ok(!existsSync(path));
      });

      it('never replaces a file that is not a socket', async () => {
        const path = join(dir, 'not-a-socket');
        writeFileSync(path, 'precious');
        await assert.rejects(
          new SocketmapServer({ responder: new StubResponder(), sharedReadBuffer }).listenUnix(path),
          /exists and is not a socket/,
        );
        assert.equal(readFileSync(path, 'utf8'), 'precious');
      });

      it('answers NOTFOUND when a lookup fails', async () => {
        const server = new SocketmapServer({
          responder: { cached: () => undefined, lookup: () => Promise.reject(new Error('boom')) },
          sharedReadBuffer,
        });
        const { port } = await server.listenTcp('127.0.0.1', 0);
        const client = await SocketmapClient.connect({ port });
        assert.equal(await client.query('example.com'), NOTFOUND_REPLY.text);
        client.close();
        await server.close();
      });
    });
  });
}
