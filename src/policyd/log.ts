// Structured log lines for the policy daemon: one JSON object per line on stderr, for start, stop and
// failures only (never one per query). Fields: time (ISO 8601), level, msg, then the event's own.

export type LogLevel = 'info' | 'warn' | 'error';

export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export function jsonLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  return (level, msg, fields = {}) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
}

export const silentLogger: Logger = () => {};
