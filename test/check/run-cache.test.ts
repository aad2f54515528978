// RunCache (src/check/run-cache.ts): one SMTP probe per (address, port, MX name) in a run, at most
// perHostConcurrency connections to one address at a time (counted on a real loopback server that holds each
// connection a moment), one policy fetch per policy host.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RunCache } from '../../src/check/run-cache.js';
import type { PolicyFetchAndParseResult } from '../../src/fetch/policy.js';
import type { FetcherSettings } from '../../src/sender/sts.js';

/**
 * Minimal SMTP without STARTTLS: greets after 50 ms, answers EHLO and QUIT; counts sessions under way at once
 * (from the connection to the client's QUIT, which comes before the client can release its slot).
 */
interface CountingServer {
  port: number;
  connections: number;
  maxOpen: number;
  resetMaxOpen(): void;
  stop(): Promise<void>;
}

async function startCountingServer(): Promise<CountingServer> {
  let open = 0;
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, maxOpen: 0 };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    state.connections++;
    state.maxOpen = Math.max(state.maxOpen, ++open);
    let done = false;
    const finish = () => {
      if (!done) open--;
      done = true;
    };
    socket.on('close', () => {
      finish();
      sockets.delete(socket);
    });
    socket.on('error', () => undefined);
    setTimeout(() => socket.write('220 counting.test ESMTP\r\n'), 50);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (let i = buffered.indexOf('\r\n'); i >= 0; i = buffered.indexOf('\r\n')) {
        const verb = buffered.slice(0, i).split(' ')[0]!.toUpperCase();
        buffered = buffered.slice(i + 2);
        if (verb === 'QUIT') {
          finish();
          socket.end('221 bye\r\n');
        } else if (verb === 'EHLO') socket.write('250-counting.test\r\n250 8BITMIME\r\n');
        else socket.write('502 no\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    get maxOpen() {
      return state.maxOpen;
    },
    resetMaxOpen: () => {
      state.maxOpen = open;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let server: CountingServer;
before(async () => {
  server = await startCountingServer();
});
after(() => server?.stop());

describe('RunCache', () => {
  it('probes an address once per MX name, however many domains ask', async () => {
    const before = server.connections;
    const cache = new RunCache({ pauseMs: 0 });
    const probe = (mxHost: string) =>
      cache.probeSmtp({ address: '127.0.0.1', port: server.port, mxHost, timeoutMs: 5000 });
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => probe('mx1.shared.test')),
      ...Array.from({ length: 20 }, () => probe('MX1.shared.test')),
      probe('mx2.shared.test'),
    ]);
    assert.equal(server.connections - before, 2, 'one connection for mx1 (any case), one for mx2');
    assert.ok(
      results.every((r) => r.banner === 'counting.test ESMTP'),
      JSON.stringify(results[0]),
    );
    assert.deepEqual(cache.stats(), { probes: 2, probesReused: 39, policyFetches: 0, policiesReused: 0 });
  });

  it('keeps at most perHostConcurrency connections open to one address', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `mx${i}.many.test`);
    const run = async (perHostConcurrency: number) => {
      server.resetMaxOpen();
      const cache = new RunCache({ perHostConcurrency, pauseMs: 0 });
      await Promise.all(
        names.map((mxHost) =>
          cache.probeSmtp({ address: '127.0.0.1', port: server.port, mxHost, timeoutMs: 5000 }),
        ),
      );
      return server.maxOpen;
    };
    const before = server.connections;
    assert.ok((await run(2)) <= 2, 'the cap of 2 holds');
    assert.equal(server.connections - before, 10, 'every MX name still probed');
    // The same ten probes without a real cap overlap: the count above is not trivially small.
    assert.ok((await run(10)) > 2);
  });

  it('fetches a policy once per policy host', async () => {
    const asked: string[] = [];
    const fetch = async (domain: string): Promise<PolicyFetchAndParseResult> => {
      asked.push(domain);
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { ok: false, code: 'FETCH_DNS', message: 'no address' } as unknown as PolicyFetchAndParseResult;
    };
    const cache = new RunCache({ fetch });
    const settings = { resolver: undefined, port: 443 } as unknown as FetcherSettings;
    await Promise.all([
      cache.fetchPolicy('a.test', settings),
      cache.fetchPolicy('A.test.', settings),
      cache.fetchPolicy('b.test', settings),
    ]);
    await cache.fetchPolicy('a.test', settings);
    assert.deepEqual(asked, ['a.test', 'b.test']);
  });
});
