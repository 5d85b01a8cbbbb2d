/** The tar reader's public face; its parts live in ./tar/ (header, entry, extended, pax, sparse, sparse-entry, problems, parser). */
export { BLOCK, type TarEntryHeader, type TarEntrySink, type TarEntryType } from './tar/header.ts';
export { TarParser, type TarParserHandlers, type TarProblem } from './tar/parser.ts';
export { MAX_SPARSE_SEGMENTS } from './tar/sparse.ts';
