// `npm run test:postgres` (the last step of `npm test`): the serve, intake, API and dashboard tests of
// test/postgres-pass.ts again, each test context on a database of a lab PostgreSQL 15 (one server per
// test file, started and stopped by the tests). Extra arguments go to `node --test`.
import { spawnSync } from 'node:child_process';
import { POSTGRES_PASS } from '../test/postgres-pass.js';

const extra = process.argv.slice(2);
const reporter = extra.some((arg) => arg.startsWith('--test-reporter')) ? [] : ['--test-reporter=spec'];
const args = [
  '--import',
  'tsx',
  '--test',
  ...reporter,
  '--test-concurrency=2',
  '--test-timeout=300000',
  ...extra,
  ...POSTGRES_PASS,
];
const run = spawnSync(process.execPath, args, {
  stdio: 'inherit',
  env: { ...process.env, MXGUARD_TEST_STORE: 'postgres' },
});
process.exit(run.status ?? 1);
