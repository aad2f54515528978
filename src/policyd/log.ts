// Log lines of the policy daemon, through the logger serve uses (src/config/log.ts: pino, JSON lines,
// secrets redacted), on stderr; for start, stop and failures only (never one per query). The engine and
// the daemon take a plain function, so that tests can collect lines and the engine knows nothing of pino.
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { createLogger, type LogLevel as PinoLevel, stderrDestination } from '../config/log.js';

export type LogLevel = 'info' | 'warn' | 'error';

export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** A pino logger as a Logger function. */
export function fromPino(logger: PinoLogger): Logger {
  return (level, msg, fields) => {
    if (fields === undefined) logger[level](msg);
    else logger[level](fields, msg);
  };
}

/** The daemon's logger: the shared pino logger at `level`, on stderr unless `destination` is given. */
export function policydLogger(level: PinoLevel = 'info', destination?: DestinationStream): Logger {
  return fromPino(createLogger(level, destination ?? stderrDestination()));
}

export const silentLogger: Logger = () => {};
