// Mutations the fuzzer applies to valid seed inputs so that generated inputs get past the first checks
// of a parser and into its deeper code: character and byte edits, truncation, duplicated and hugely
// repeated ranges, crossover with another seed, dictionary tokens of the format, unicode that changes
// length under case mapping, lone surrogates, numbers at the edges; and for JSON, edits of the tree
// (fields deleted, retyped, duplicated, nested deep, prototype-named keys).
import type { Rng } from './random.js';

/** Inputs never grow past this many characters or bytes (a "huge repeat" stops here). */
export const MAX_INPUT = 1 << 20;

/** Characters that parsers treat specially or that change size when case-mapped or encoded. */
export const ODD_CHARS: readonly string[] = [
  '\0',
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\x0b',
  '\x0c',
  '\x1b',
  '\x7f',
  '\x80',
  '\xa0',
  '\xff',
  ' ',
  ';',
  '=',
  ':',
  ',',
  '.',
  '"',
  "'",
  '\\',
  '%',
  '{',
  '}',
  '[',
  ']',
  '(',
  ')',
  '<',
  '>',
  '/',
  '@',
  '*',
  '-',
  '_',
  '+',
  '~',
  '?',
  '#',
  'é',
  'İ', // lower-cases to two code units
  'ß', // upper-cases to "SS"
  'ﬀ', // upper-cases to "FF"
  'Ω',
  '\u0085', // NEL
  '\u2028', // LINE SEPARATOR
  '\u202e', // RIGHT-TO-LEFT OVERRIDE
  '\u200b',
  '\ufeff', // BOM
  '\ufffd',
  '\ud800', // lone high surrogate
  '\udc00', // lone low surrogate
  '😀',
  '\u{e0041}',
  'xn--',
  'ｅｘａｍｐｌｅ',
];

/** Numbers at the edges of the ranges parsers check (octets, 16/32-bit, safe integers, doubles, RFC limits). */
export const EDGE_NUMBERS: readonly string[] = [
  '0',
  '00',
  '-0',
  '-1',
  '1',
  '+1',
  '1.5',
  '255',
  '256',
  '65535',
  '65536',
  '86400',
  '604800',
  '31557600',
  '31557601',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '9999999999',
  '99999999999',
  '9007199254740991',
  '9007199254740992',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999999999999999',
  '1e308',
  '1e309',
  '-1e309',
  '1e-400',
  '0x1f',
  '0b1',
  '0o7',
  'NaN',
  'Infinity',
  '00000000000000000000000000000001',
];

const DIGITS = /[0-9]+/g;

/** A random code point: mostly ASCII, sometimes anything (including surrogate halves). */
export function randomChar(rng: Rng): string {
  const roll = rng.int(10);
  if (roll < 6) return String.fromCharCode(rng.range(0x20, 0x7e));
  if (roll < 7) return String.fromCharCode(rng.range(0, 0x1f));
  if (roll < 9) return rng.pick(ODD_CHARS);
  return String.fromCodePoint(rng.int(0x110000));
}

export function randomString(rng: Rng, maxBits = 6): string {
  const length = rng.size(maxBits);
  let text = '';
  for (let i = 0; i < length; i++) text += randomChar(rng);
  return text;
}

/** The text repeated to at most `count` times, never past MAX_INPUT characters. */
function repeatCapped(text: string, count: number): string {
  if (text.length === 0) return '';
  return text.repeat(Math.max(1, Math.min(count, Math.floor(MAX_INPUT / text.length))));
}

/** A repeat count: mostly a few, sometimes hundreds, rarely enough to reach MAX_INPUT. */
function repeatCount(rng: Rng): number {
  const roll = rng.int(100);
  if (roll < 70) return rng.range(2, 8);
  if (roll < 97) return rng.range(9, 1000);
  return rng.range(1000, 200_000);
}

/**
 * Apply a few random edits to `text`. `dictionary` holds tokens of the format (field names, keywords,
 * separators); `others` are other seeds of the same format, for crossover.
 */
export function mutateText(
  rng: Rng,
  text: string,
  dictionary: readonly string[],
  others: readonly string[] = [],
): string {
  let t = text;
  const edits = rng.count(0.5, 8);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(t.length + 1);
    const end = at + rng.size(Math.min(12, Math.ceil(Math.log2(t.length + 2))));
    switch (rng.int(13)) {
      case 0: // replace one character
        t = t.slice(0, at) + randomChar(rng) + t.slice(at + 1);
        break;
      case 1: // insert a token of the format
        t = t.slice(0, at) + (dictionary.length > 0 ? rng.pick(dictionary) : randomChar(rng)) + t.slice(at);
        break;
      case 2: // insert an odd character
        t = t.slice(0, at) + rng.pick(ODD_CHARS) + t.slice(at);
        break;
      case 3: // delete a range
        t = t.slice(0, at) + t.slice(end);
        break;
      case 4: // duplicate a range in place
        t = t.slice(0, end) + t.slice(at, end) + t.slice(end);
        break;
      case 5: // repeat a range many times
        t =
          t.slice(0, at) + repeatCapped(t.slice(at, Math.max(end, at + 1)), repeatCount(rng)) + t.slice(end);
        break;
      case 6: // truncate
        t = t.slice(0, at);
        break;
      case 7: {
        // crossover: this seed's head, another seed's tail
        if (others.length === 0) break;
        const other = rng.pick(others);
        t = t.slice(0, at) + other.slice(rng.int(other.length + 1));
        break;
      }
      case 8: // flip the case of a range
        t =
          t.slice(0, at) +
          (rng.chance(0.5) ? t.slice(at, end).toUpperCase() : t.slice(at, end).toLowerCase()) +
          t.slice(end);
        break;
      case 9: {
        // replace a run of digits with a number at an edge
        const runs = [...t.matchAll(DIGITS)];
        if (runs.length === 0) {
          t = t.slice(0, at) + rng.pick(EDGE_NUMBERS) + t.slice(at);
          break;
        }
        const run = rng.pick(runs);
        const start = run.index ?? 0;
        t = t.slice(0, start) + rng.pick(EDGE_NUMBERS) + t.slice(start + run[0].length);
        break;
      }
      case 10: // insert random garbage
        t = t.slice(0, at) + randomString(rng) + t.slice(at);
        break;
      case 11: {
        // swap one separator for another
        const separators = [';', ' ', '\t', '\n', '\r\n', ',', ':', '=', ''];
        const from = rng.pick(separators);
        const i = from === '' ? -1 : t.indexOf(from, at);
        if (i >= 0) t = t.slice(0, i) + rng.pick(separators) + t.slice(i + from.length);
        break;
      }
      default: // insert whitespace
        t = t.slice(0, at) + rng.pick([' ', '  ', '\t', ' \t ', '\r\n ', '\n\t']) + t.slice(at);
    }
    if (t.length > MAX_INPUT) t = t.slice(0, MAX_INPUT);
  }
  return t;
}

/** Apply a few random edits to `bytes`: bit flips, odd bytes, 16/32-bit fields set to edge values, ranges. */
export function mutateBytes(rng: Rng, bytes: Uint8Array, others: readonly Uint8Array[] = []): Buffer {
  let b = Buffer.from(bytes);
  const edits = rng.count(0.5, 8);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1);
    const end = Math.min(b.length, at + rng.size(Math.min(12, Math.ceil(Math.log2(b.length + 2)))));
    switch (rng.int(10)) {
      case 0:
        if (at < b.length) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1:
        if (at < b.length)
          b[at] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x0a, 0x0d, 0x20, 0x2c, 0x3a]);
        break;
      case 2:
        if (at < b.length) b[at] = rng.int(256);
        break;
      case 3: {
        // a length or count field at an edge
        const value = rng.pick([0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff]);
        if (at + 2 <= b.length) b.writeUInt16BE(value, at);
        break;
      }
      case 4:
        if (at + 4 <= b.length) b.writeUInt32BE(rng.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff]), at);
        break;
      case 5:
        b = Buffer.concat([b.subarray(0, at), b.subarray(end)]);
        break;
      case 6:
        b = Buffer.concat([b.subarray(0, end), b.subarray(at, end), b.subarray(end)]);
        break;
      case 7: {
        const piece = b.subarray(at, Math.max(end, Math.min(b.length, at + 1)));
        const times = Math.min(repeatCount(rng), Math.floor(MAX_INPUT / Math.max(1, piece.length)));
        b = Buffer.concat([
          b.subarray(0, at),
          ...Array.from({ length: times }, () => piece),
          b.subarray(end),
        ]);
        break;
      }
      case 8:
        b = b.subarray(0, at);
        break;
      default: {
        if (others.length === 0) break;
        const other = rng.pick(others);
        b = Buffer.concat([b.subarray(0, at), Buffer.from(other.subarray(rng.int(other.length + 1)))]);
      }
    }
    if (b.length > MAX_INPUT) b = b.subarray(0, MAX_INPUT);
  }
  return Buffer.from(b);
}

/** Keys that are not data to a careless parser (prototype members) or odd in other ways. */
const ODD_KEYS: readonly string[] = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'length',
  '',
  ' ',
  '0',
  'policies ',
  'POLICIES',
  'é',
];

/** JSON values at the edges: of type, of number range, of string content and size, of nesting. */
function edgeValue(rng: Rng, like: unknown): unknown {
  switch (rng.int(12)) {
    case 0:
      return rng.pick([null, true, false]);
    case 1:
      return rng.pick([
        0,
        -0,
        -1,
        1,
        0.5,
        -0.5,
        255,
        256,
        2 ** 31,
        2 ** 32,
        2 ** 53 - 1,
        2 ** 53,
        2 ** 53 + 2,
        2 ** 64,
        1e21,
        1e308,
        -1e308,
        5e-324,
        Number.MAX_VALUE,
      ]);
    case 2:
      return rng.pick(['', ' ', '0', '-1', '1e3', 'null', 'true', '[]', '{}', '\0', '\ud800', '\u202e']);
    case 3:
      return 'A'.repeat(rng.pick([256, 257, 1024, 1025, 65536, 300_000]));
    case 4:
      return randomString(rng, 8);
    case 5:
      return [];
    case 6:
      return {};
    case 7:
      return [like];
    case 8: {
      // deep nesting
      let v: unknown = like;
      const depth = rng.pick([2, 10, 63, 64, 65, 100, 1000]);
      for (let i = 0; i < depth; i++) v = rng.chance(0.5) ? [v] : { x: v };
      return v;
    }
    case 9:
      // JSON text, not String(): an object may have an own "toString" that is not a function.
      return typeof like === 'string' ? mutateText(rng, like, []) : (JSON.stringify(like) ?? 'undefined');
    case 10:
      return rng.pick([
        '2016-04-01T00:00:00Z',
        '2016-04-01T00:00:00',
        '2016-04-01',
        '2016-02-30T00:00:00Z',
        '2016-04-01T24:00:00Z',
        '2016-04-01T23:59:60Z',
        '+275760-09-13T00:00:00Z',
        '-000001-01-01T00:00:00Z',
        '9999-12-31T23:59:59.999999999Z',
        '2016-04-01T00:00:00+25:00',
        '1970-01-01T00:00:00.000-00:00',
      ]);
    default:
      return typeof like === 'number' ? -like : 0;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Set an own property even for "__proto__" (plain assignment would change the prototype instead). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Every object and array in the tree, with at most `limit` of them collected. */
function containers(root: unknown, limit = 2000): Array<Record<string, unknown> | unknown[]> {
  const found: Array<Record<string, unknown> | unknown[]> = [];
  const stack: unknown[] = [root];
  while (stack.length > 0 && found.length < limit) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      found.push(v);
      stack.push(...v.slice(0, 50));
    } else if (isObject(v)) {
      found.push(v);
      for (const item of Object.values(v)) stack.push(item);
    }
  }
  return found;
}

/** The JSON tree's rough size in bytes (strings by length, 8 per other value), counted up to `limit`. */
export function jsonWeight(value: unknown, limit: number): number {
  let weight = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && weight <= limit) {
    const v = stack.pop();
    if (typeof v === 'string') weight += v.length + 2;
    else if (Array.isArray(v)) {
      weight += 8;
      for (const item of v) stack.push(item);
    } else if (isObject(v)) {
      for (const [key, item] of Object.entries(v)) {
        weight += key.length + 4;
        stack.push(item);
      }
    } else weight += 8;
  }
  return weight;
}

/** A mutated JSON tree stays under this weight (decodeReports refuses more than 50 MiB of JSON anyway). */
export const MAX_JSON_WEIGHT = 8 * 1024 * 1024;

/**
 * Apply a few random edits to a JSON tree (a fresh copy: `value` is not changed). `keys` are field
 * names of the format, added to objects now and then.
 */
export function mutateJson(rng: Rng, value: unknown, keys: readonly string[]): unknown {
  const root = { root: structuredClone(value) };
  const edits = rng.count(0.6, 10);
  for (let e = 0; e < edits; e++) {
    const nodes = containers(root);
    const node = rng.pick(nodes);
    if (Array.isArray(node)) {
      const i = rng.int(node.length + 1);
      switch (rng.int(6)) {
        case 0:
          node.splice(i, 1);
          break;
        case 1: {
          // duplicate an element, a few or many times
          if (node.length === 0) break;
          const item = node[Math.min(i, node.length - 1)];
          const wanted = rng.chance(0.95) ? rng.range(1, 5) : rng.pick([100, 1000, 10_000]);
          // Never past MAX_JSON_WEIGHT in all: copies of copies of a long string would reach gigabytes.
          const room = MAX_JSON_WEIGHT - jsonWeight(root, MAX_JSON_WEIGHT);
          const times = Math.min(wanted, Math.floor(room / Math.max(1, jsonWeight(item, room))));
          for (let k = 0; k < times; k++) node.push(structuredClone(item));
          break;
        }
        case 2:
          node.length = Math.min(node.length, i);
          break;
        default:
          node[Math.min(i, Math.max(0, node.length - 1))] = edgeValue(rng, node[i]);
      }
    } else {
      const names = Object.keys(node);
      const key = names.length > 0 && rng.chance(0.8) ? rng.pick(names) : undefined;
      switch (rng.int(6)) {
        case 0:
          if (key !== undefined) delete node[key];
          break;
        case 1:
          setOwn(node, rng.chance(0.5) ? rng.pick(ODD_KEYS) : rng.pick(keys), edgeValue(rng, undefined));
          break;
        case 2: {
          // move a value under another key (a field of the wrong type, a field renamed)
          if (key === undefined || names.length < 2) break;
          const other = rng.pick(names);
          const swap = node[key];
          node[key] = node[other];
          node[other] = swap;
          break;
        }
        default:
          if (key !== undefined) setOwn(node, key, edgeValue(rng, node[key]));
      }
    }
  }
  return root.root;
}
