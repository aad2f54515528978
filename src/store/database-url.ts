// What a store location names: a PostgreSQL URL or a SQLite file path, and how it is shown in messages and
// logs (the password never: postgres://user:***@host/db).

/** Whether `text` is a PostgreSQL connection URL (postgres:// or postgresql://), not a SQLite path. */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text);
}

/** The database as shown to people: a SQLite path as given, a URL with its password (also ?password=) masked. */
export function describeDatabase(database: string): string {
  if (!isPostgresUrl(database)) return database;
  try {
    const url = new URL(database);
    if (url.password !== '') url.password = '***';
    for (const key of ['password', 'sslpassword']) {
      if (url.searchParams.has(key)) url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    return 'a postgres:// URL that does not parse';
  }
}
