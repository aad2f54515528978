// TSIG (src/dns/tsig.ts, RFC 8945) against BIND's nsupdate (bind9-dnsutils) as the oracle: a loopback TCP
// server captures the signed UPDATE nsupdate sends; our signer, given the same message and time, must produce
// the very same bytes (MAC included), for the three algorithms. Then the server answers with a response we
// sign over nsupdate's request MAC (RFC 8945 §4.3.1): nsupdate accepts it, and rejects it with one bit flipped.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { responseMacValid, signMessage, splitTsig } from '../../src/dns/tsig.js';
import { TSIG_ALGORITHMS, type TsigKey } from '../../src/dns/tsig-key.js';
import { requireCommand } from '../lab/dnssec.js';

interface Exchange {
  request: Buffer;
  nsupdate: { exitCode: number; output: string };
}

/** Run nsupdate against a one-shot loopback server that answers each request with `answer(request)`. */
async function nsupdateAgainst(
  key: TsigKey,
  answer: (request: Buffer) => Buffer | undefined,
): Promise<Exchange> {
  const nsupdate = requireCommand('nsupdate', 'bind9-dnsutils');
  let request: Buffer | undefined;
  const server = net.createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      request ??= buffered.subarray(2, 2 + buffered.readUInt16BE(0));
      const reply = answer(request);
      if (reply === undefined) return void socket.destroy();
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      socket.end(Buffer.concat([length, reply]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const nsupdateResult = await new Promise<Exchange['nsupdate']>((resolve) => {
      const child = execFile(
        nsupdate,
        ['-v', '-t', '3', '-y', `${key.algorithm}:${key.name}:${key.secret.toString('base64')}`],
        (err, stdout, stderr) =>
          resolve({ exitCode: err ? Number(err.code ?? 1) : 0, output: stdout + stderr }),
      );
      child.stdin?.end(
        `server 127.0.0.1 ${port}\nzone example.test\nupdate delete x.example.test TXT\n` +
          'update add x.example.test 60 TXT "hello" "world"\nsend\n',
      );
    });
    assert.ok(request, `nsupdate sent nothing: ${nsupdateResult.output}`);
    return { request, nsupdate: nsupdateResult };
  } finally {
    server.close();
  }
}

/** A NOERROR response to an UPDATE: same id and zone section, QR set, counts other than ZOCOUNT zero. */
function noerrorResponse(request: Buffer): Buffer {
  const zoneEnd = 12 + zoneSectionLength(request);
  const response = Buffer.from(request.subarray(0, zoneEnd));
  response.writeUInt16BE(0x8000 | (5 << 11), 2); // QR, opcode UPDATE, NOERROR
  for (const offset of [6, 8, 10]) response.writeUInt16BE(0, offset);
  return response;
}

function zoneSectionLength(message: Buffer): number {
  let pos = 12;
  while (message[pos] !== 0) pos += 1 + message[pos]!;
  return pos + 1 + 4 - 12;
}

const keyFor = (algorithm: TsigKey['algorithm']): TsigKey => ({
  name: 'upd.example',
  algorithm,
  secret: Buffer.alloc(algorithm === 'hmac-sha256' ? 32 : 64, algorithm.length),
});

describe('TSIG against nsupdate', () => {
  for (const algorithm of TSIG_ALGORITHMS) {
    it(`signs ${algorithm} byte for byte as nsupdate does`, async () => {
      const key = keyFor(algorithm);
      const { request } = await nsupdateAgainst(key, () => undefined);
      const split = splitTsig(request);
      assert.ok(split, 'nsupdate signed its request');
      assert.equal(split.tsig.keyName, 'upd.example');
      assert.equal(split.tsig.algorithm, algorithm);
      const ours = signMessage(split.unsigned, key, split.tsig.timeSigned);
      assert.equal(ours.bytes.toString('hex'), request.toString('hex'));
      assert.equal(ours.mac.toString('hex'), split.tsig.mac.toString('hex'));
    });
  }

  it('a response signed over the request MAC is accepted by nsupdate; one flipped bit is not', async () => {
    const key = keyFor('hmac-sha256');
    const signedResponse = (request: Buffer) => {
      const split = splitTsig(request)!;
      const time = Math.floor(Date.now() / 1000);
      return signMessage(noerrorResponse(request), key, time, split.tsig.mac).bytes;
    };
    const good = await nsupdateAgainst(key, signedResponse);
    assert.equal(good.nsupdate.exitCode, 0, good.nsupdate.output);

    const tampered = await nsupdateAgainst(key, (request) => {
      const bytes = signedResponse(request);
      bytes[bytes.length - 10]! ^= 1; // inside the MAC
      return bytes;
    });
    assert.notEqual(tampered.nsupdate.exitCode, 0, tampered.nsupdate.output);
  });

  it('responseMacValid accepts the response nsupdate accepted and rejects another key, another request MAC', async () => {
    const key = keyFor('hmac-sha384');
    let response: Buffer | undefined;
    const { request, nsupdate } = await nsupdateAgainst(key, (req) => {
      response = signMessage(
        noerrorResponse(req),
        key,
        Math.floor(Date.now() / 1000),
        splitTsig(req)!.tsig.mac,
      ).bytes;
      return response;
    });
    assert.equal(nsupdate.exitCode, 0, nsupdate.output);
    const requestMac = splitTsig(request)!.tsig.mac;
    const split = splitTsig(response!)!;
    assert.equal(responseMacValid(split.unsigned, split.tsig, key, requestMac), true);
    const otherKey = { ...key, secret: Buffer.alloc(64, 1) };
    assert.equal(responseMacValid(split.unsigned, split.tsig, otherKey, requestMac), false);
    assert.equal(responseMacValid(split.unsigned, split.tsig, key, Buffer.alloc(requestMac.length)), false);
  });
});

describe('splitTsig on hostile input', () => {
  it('throws RangeError, never crashes, on truncations of a signed message', () => {
    const key = keyFor('hmac-sha256');
    const message = noerrorResponse(
      Buffer.concat([Buffer.from('0001280000010000000000000665786d706c650000060001', 'hex')]),
    );
    const { bytes } = signMessage(message, key, 1_700_000_000);
    assert.ok(splitTsig(bytes));
    for (let cut = 0; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      assert.throws(() => splitTsig(part), RangeError, `cut at ${cut}`);
    }
  });

  it('a compression loop is an error, not a hang', () => {
    const loop = Buffer.from('000100000000000000000001c00c', 'hex');
    assert.throws(() => splitTsig(loop), RangeError);
  });

  it('random bytes and random corruptions of a signed message: a result or RangeError, nothing else', () => {
    const { bytes } = signMessage(
      Buffer.from('0001280000010000000000000665786d706c650000060001', 'hex'),
      keyFor('hmac-sha512'),
      1_700_000_000,
    );
    const corrupted = fc
      .array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })
      .map((edits) => {
        const copy = Buffer.from(bytes);
        for (const [at, value] of edits) copy[at] = value;
        return copy;
      });
    const random = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.oneof(corrupted, random), (input) => {
        try {
          splitTsig(input);
        } catch (err) {
          if (!(err instanceof RangeError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('a message without TSIG gives undefined', () => {
    assert.equal(splitTsig(Buffer.from('000100000000000000000000', 'hex')), undefined);
  });
});
