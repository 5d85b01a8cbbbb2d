import { type CatalogueStats, SIDECAR_SUFFIX, seriesIdOf, seriesOf } from './catalogue.ts';
import { archiveFormatOf } from './compression.ts';
import { type Finding, finding } from './findings.ts';
import { backupLocation } from './ledger.ts';

/** The series an orphan sidecar's archive would have belonged to, when its name is an archive's. */
function seriesOfOrphan(source: string, sidecarKey: string): string | undefined {
  const target = sidecarKey.slice(0, -SIDECAR_SUFFIX.length);
  const slash = target.lastIndexOf('/');
  const format = archiveFormatOf(target.slice(slash + 1));
  return format ? seriesOf(source, target.slice(0, slash + 1) + format.stem) : undefined;
}

/**
 * What one source's listing says on its own: NO_BACKUPS when it holds no backup at all (an empty
 * or emptied source must never read as a pass), and ORPHAN_REFERENCE for each checksum sidecar
 * with no archive beside it (the archive it vouched for is gone).
 */
export function sourceFindings(source: string, backups: number, stats: CatalogueStats): Finding[] {
  const findings: Finding[] = [];
  if (backups === 0) {
    const what =
      stats.objects === 0
        ? 'it lists no objects'
        : `none of its ${stats.objects} object(s) is a backup (an archive, or a folder named with a timestamp or holding a SHA256SUMS)`;
    findings.push(
      finding(
        'NO_BACKUPS',
        `source ${source} holds no backup: ${what}; check that the backup job writes there and that nothing deleted its backups`,
        { series: seriesIdOf(source, '') },
      ),
    );
  }
  for (const key of stats.orphanReferences ?? []) {
    const series = seriesOfOrphan(source, key);
    findings.push(
      finding(
        'ORPHAN_REFERENCE',
        `${backupLocation({ source, key })}: a checksum sidecar with no ${key.slice(key.lastIndexOf('/') + 1, -SIDECAR_SUFFIX.length)} beside it: the archive it vouches for was deleted or never written`,
        series === undefined ? { object: key } : { series, object: key },
      ),
    );
  }
  const more = (stats.orphans ?? 0) - (stats.orphanReferences?.length ?? 0);
  if (more > 0) {
    findings.push(
      finding(
        'ORPHAN_REFERENCE',
        `${more} more checksum sidecar(s) in ${source} have no archive beside them`,
      ),
    );
  }
  return findings;
}
