/**
 * Colours chosen to differ in lightness as well as hue, and every status also carries a mark and a
 * word, so the page reads printed in grey and by people who do not see red from green.
 */
export const PAGE_STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#1b1b1b;background:#fff}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc}h3{font-size:15px;margin:16px 0 4px}
.summary{font-size:16px;font-weight:600}.meta,.legend,.muted{color:#555}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
table.matrix{border-collapse:collapse;width:100%;font-size:13px}
.matrix th,.matrix td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
.matrix thead th{background:#eee}.matrix td.num{text-align:right}
.matrix tbody th{font-weight:600;max-width:280px;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 6px;border-radius:3px;white-space:nowrap;font-weight:600}
.s-FAIL{background:#8b0000;color:#fff}.s-WARN{background:#ffe08a;color:#3d2e00}.s-PASS,.s-ok{background:#e3f4e3;color:#14401a}
.s-SKIPPED,.s--{background:#fff;color:#666;font-weight:400;border:1px dashed #999}
tr.row-FAIL th{border-left:6px solid #8b0000}tr.row-series{background:#f6f6f6}
ol.findings{padding-left:20px}.finding{margin:0 0 10px}.finding p{margin:2px 0}
.finding.error .code{background:#8b0000;color:#fff}.finding.warning .code{background:#ffe08a}
.code{font-family:ui-monospace,monospace;padding:0 4px;border-radius:3px}.sev{color:#555}.guide{color:#333;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0;border:1px solid #ddd;padding:4px 6px}
.chart figcaption{font-size:12px;color:#333}
svg .line{fill:none;stroke:#1f4e9a;stroke-width:1.6}svg circle{fill:#1f4e9a}svg .axis{stroke:#999}
svg .limit{stroke:#8b0000;stroke-dasharray:4 3}svg .limit-label{font-size:10px;fill:#8b0000}svg .tick{font-size:9px;fill:#666}
@media print{body{max-width:none}.chart{break-inside:avoid}}
`;
