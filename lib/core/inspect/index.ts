export {
  type ArchiveInspection,
  type ArchiveProblem,
  EMPTY_SHA256,
  type InspectOptions,
  inspectArchive,
  type RootManifestCheck,
} from './inspect-archive.ts';
export {
  archiveByPattern,
  looksLikeTar,
  matchesArchivePattern,
  readHead,
  SNIFF_BYTES,
  sniffArchiveFormat,
} from './sniff.ts';
export { type TarEntryHeader, TarParser, type TarProblem } from './tar-parser.ts';
