// Rules every Store follows for monitoring data (src/store/monitor-types.ts), kept apart from SQL
// so that another store applies exactly the same ones: the shape checks of what the monitor hands
// in, and the bounds on what one check run keeps (a hostile zone can make thousands of findings,
// each with text of any length). Bounds are applied while the row is built: nothing beyond them is
// copied or serialised.
import { describeValue, domainKey } from './domain-rules.js';
import {
  type AlertEvent,
  type CheckOutcome,
  MAX_STORED_FINDING_TEXT,
  MAX_STORED_FINDINGS,
  MAX_STORED_FINDINGS_BYTES,
  type NewAlert,
  type NewCheckRun,
  type NewDelivery,
  type StoredFinding,
} from './monitor-types.js';
import { CLIP_MARK } from './paging.js';
import { storeInvalid } from './types.js';

const RUN_STATUSES: readonly string[] = ['pass', 'warn', 'fail', 'error'];
const TRIGGERS: readonly string[] = ['schedule', 'start', 'manual'];
const SEVERITIES: readonly string[] = ['fail', 'warn'];
const CHANNELS: readonly string[] = ['webhook', 'email'];
const EVENTS: readonly string[] = ['alert.opened', 'alert.resolved'];
const FINDING_TEXT: ReadonlyArray<keyof StoredFinding> = ['section', 'status', 'code', 'message'];
const FINDING_OPTIONAL: ReadonlyArray<keyof StoredFinding> = ['host', 'fix', 'sender', 'answer', 'cause'];

/** A check run as stored: the JSON of each finding kept, and the counts over every finding. */
export interface BoundedRun {
  domain: string;
  atMs: number;
  run: NewCheckRun;
  findingsJson: string[];
  omitted: number;
  counts: Record<'pass' | 'warn' | 'fail', number>;
}

/** `text` cut to at most `max` characters (UTF-16 units, never half a pair), ending in CLIP_MARK when cut. */
export function clipStored(text: string, max = MAX_STORED_FINDING_TEXT): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - CLIP_MARK.length);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return cut + CLIP_MARK;
}

/** Check a new run and bound its findings (MAX_STORED_FINDINGS, MAX_STORED_FINDINGS_BYTES, clipped text). */
export function boundedRun(run: NewCheckRun): BoundedRun {
  if (typeof run !== 'object' || run === null) throw storeInvalid('run: must be an object');
  if (typeof run.domain !== 'string') throw storeInvalid('run.domain: must be a string');
  const atMs = typeof run.at === 'string' ? Date.parse(run.at) : Number.NaN;
  if (Number.isNaN(atMs)) throw storeInvalid(`run.at: ${describeValue(run.at)} is not a timestamp`);
  if (!Number.isSafeInteger(run.durationMs) || run.durationMs < 0) {
    throw storeInvalid(
      `run.durationMs: ${describeValue(run.durationMs)} is not a whole number of milliseconds`,
    );
  }
  if (!RUN_STATUSES.includes(run.status))
    throw storeInvalid(`run.status: ${describeValue(run.status)} is not a status`);
  if (!TRIGGERS.includes(run.trigger))
    throw storeInvalid(`run.trigger: ${describeValue(run.trigger)} is not a trigger`);
  if (run.error !== undefined && typeof run.error !== 'string')
    throw storeInvalid('run.error: must be a string');
  if (!Array.isArray(run.findings)) throw storeInvalid('run.findings: must be a list');
  const counts = { pass: 0, warn: 0, fail: 0 };
  const kept: string[] = [];
  let bytes = 2;
  run.findings.forEach((finding, i) => {
    const stored = storedFinding(finding, i);
    if (stored.status === 'pass' || stored.status === 'warn' || stored.status === 'fail')
      counts[stored.status]++;
    if (kept.length === MAX_STORED_FINDINGS || bytes > MAX_STORED_FINDINGS_BYTES) return;
    const json = JSON.stringify(stored);
    const size = Buffer.byteLength(json) + 1;
    if (bytes + size > MAX_STORED_FINDINGS_BYTES) {
      bytes = MAX_STORED_FINDINGS_BYTES + 1; // the rest is omitted, keeping the order
      return;
    }
    bytes += size;
    kept.push(json);
  });
  const bounded: NewCheckRun = { ...run, findings: [] };
  if (run.error !== undefined) bounded.error = clipStored(run.error);
  return {
    domain: domainKey(run.domain),
    atMs,
    run: bounded,
    findingsJson: kept,
    omitted: run.findings.length - kept.length,
    counts,
  };
}

/** One finding as stored: its known fields only, each text clipped; the status counted later. */
function storedFinding(finding: unknown, index: number): StoredFinding {
  if (typeof finding !== 'object' || finding === null)
    throw storeInvalid(`run.findings[${index}]: must be an object`);
  const source = finding as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const field of FINDING_TEXT) {
    const value = source[field];
    if (typeof value !== 'string') throw storeInvalid(`run.findings[${index}].${field}: must be a string`);
    out[field] = clipStored(value);
  }
  for (const field of FINDING_OPTIONAL) {
    const value = source[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw storeInvalid(`run.findings[${index}].${field}: must be a string`);
    out[field] = clipStored(value);
  }
  return out as unknown as StoredFinding;
}

/** A new alert checked, its text clipped. */
export function checkedAlert(alert: NewAlert, where: string): NewAlert {
  if (typeof alert !== 'object' || alert === null) throw storeInvalid(`${where}: must be an object`);
  for (const field of ['domain', 'code', 'subject', 'message'] as const) {
    if (typeof alert[field] !== 'string') throw storeInvalid(`${where}.${field}: must be a string`);
  }
  if (!SEVERITIES.includes(alert.severity)) {
    throw storeInvalid(`${where}.severity: ${describeValue(alert.severity)} is not fail or warn`);
  }
  if (alert.fix !== undefined && typeof alert.fix !== 'string')
    throw storeInvalid(`${where}.fix: must be a string`);
  const out: NewAlert = {
    domain: domainKey(alert.domain),
    code: clipStored(alert.code),
    subject: clipStored(alert.subject),
    severity: alert.severity,
    message: clipStored(alert.message),
  };
  if (alert.fix !== undefined) out.fix = clipStored(alert.fix);
  return out;
}

/** A new delivery checked; the event's text clipped as the alert's is. */
export function checkedDelivery(delivery: NewDelivery, where: string): NewDelivery {
  if (typeof delivery !== 'object' || delivery === null) throw storeInvalid(`${where}: must be an object`);
  if (!CHANNELS.includes(delivery.channel)) {
    throw storeInvalid(`${where}.channel: ${describeValue(delivery.channel)} is not webhook or email`);
  }
  if (typeof delivery.target !== 'string' || delivery.target === '') {
    throw storeInvalid(`${where}.target: must be a non-empty string`);
  }
  const event = delivery.event;
  if (
    typeof event !== 'object' ||
    event === null ||
    !EVENTS.includes(event.event) ||
    typeof event.message !== 'string' ||
    (event.fix !== undefined && typeof event.fix !== 'string') ||
    (event.host !== undefined && typeof event.host !== 'string')
  ) {
    throw storeInvalid(`${where}.event: must be an alert event (event, message, fix and host as text)`);
  }
  const clipped: AlertEvent = { ...event, message: clipStored(event.message) };
  if (event.fix !== undefined) clipped.fix = clipStored(event.fix);
  if (event.host !== undefined) clipped.host = clipStored(event.host);
  return { channel: delivery.channel, target: clipStored(delivery.target), event: clipped };
}

/** A check's outcome as a store writes it: the run bounded, each alert and delivery checked and clipped. */
export interface CheckedOutcome {
  bounded: BoundedRun;
  open: Array<{ alert: NewAlert; deliveries: NewDelivery[] }>;
  resolve: Array<{ alertId: number; deliveries: NewDelivery[] }>;
}

/** Check a check's outcome before anything is written; the alerts it opens must be of the run's domain. */
export function checkedOutcome(outcome: CheckOutcome): CheckedOutcome {
  if (typeof outcome !== 'object' || outcome === null) throw storeInvalid('outcome: must be an object');
  const bounded = boundedRun(outcome.run);
  if (!Array.isArray(outcome.open) || !Array.isArray(outcome.resolve)) {
    throw storeInvalid('outcome: open and resolve must be lists');
  }
  const open = outcome.open.map((o, i) => {
    const alert = checkedAlert(o?.alert, `open[${i}].alert`);
    if (alert.domain !== bounded.domain) throw storeInvalid(`open[${i}].alert.domain: not the run's domain`);
    return { alert, deliveries: checkedDeliveries(o.deliveries, `open[${i}]`) };
  });
  const resolve = outcome.resolve.map((r, i) => {
    if (!Number.isSafeInteger(r?.alertId)) throw storeInvalid(`resolve[${i}].alertId: must be an alert id`);
    return { alertId: r.alertId, deliveries: checkedDeliveries(r.deliveries, `resolve[${i}]`) };
  });
  return { bounded, open, resolve };
}

function checkedDeliveries(deliveries: NewDelivery[], where: string): NewDelivery[] {
  if (!Array.isArray(deliveries)) throw storeInvalid(`${where}.deliveries: must be a list`);
  return deliveries.map((d, i) => checkedDelivery(d, `${where}.deliveries[${i}]`));
}
