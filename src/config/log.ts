// The JSON logger of the long-running commands (`serve`, `policyd`): pino, one object per line, secrets
// redacted at any depth they are logged at. serve writes it to stdout, policyd to stderr.
import pino, { type DestinationStream, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Keys whose values never reach a log line (pino redaction paths). */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'adminPassword',
  '*.adminPassword',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

/** The JSON logger (stdout unless `destination` is given), secrets redacted. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Standard error as a pino destination (synchronous, so nothing is lost when the process exits). */
export function stderrDestination(): DestinationStream {
  return pino.destination({ dest: 2, sync: true });
}
