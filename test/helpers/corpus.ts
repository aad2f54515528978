// The corpus of real reports the parsers are judged by (../shared/corpus, where SOURCES.md says each file comes
// from and under which licence), kept in the repository under test/fixtures/corpus (dmarc/ and tlsrpt/, byte for
// byte) so that a clean checkout on any machine tests the same files.
import { fileURLToPath } from 'node:url';

export const CORPUS_URL = new URL('../fixtures/corpus/', import.meta.url);
export const CORPUS_DIR = fileURLToPath(CORPUS_URL);
