import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { crc32 } from 'node:zlib';

/**
 * An HTTP proxy in front of s3rver that injects faults into object reads, each a bounded
 * number of times per object, then lets requests pass. It also answers If-Match as S3 does
 * (s3rver ignores it): a read whose If-Match is not the object's ETag gets 412.
 */
export type Fault =
  /** An S3 error answer (500 InternalError, 503 SlowDown, 412 PreconditionFailed...). */
  | { kind: 'status'; status: number; code: string }
  /** The headers and `after` bytes of the body, then the connection is destroyed. */
  | { kind: 'reset'; after: number }
  /** `after` bytes of the body, sent chunked without Content-Length, and a clean end. */
  | { kind: 'early-end'; after: number }
  /** The headers and `after` bytes of the body, then nothing more until the client goes away. */
  | { kind: 'stall'; after: number }
  /**
   * The whole body with one bit flipped at `at` (default: the middle); with `checksum`, sent
   * with the CRC32 of the unflipped body in x-amz-checksum-crc32, as S3 does for an object
   * uploaded with a checksum when the reader asks for it.
   */
  | { kind: 'flip'; at?: number; checksum?: boolean };

export interface FaultRule {
  fault: Fault;
  /** Times the fault fires for each object key (Infinity: a persistent fault). */
  times: number;
  /** Keys (bucket/key) the rule applies to; all object reads by default. */
  keys?: RegExp;
  /** Only ranged reads (`resume`), only whole reads (`first`), or both (default); `list`: listings instead of reads. */
  reads?: 'first' | 'resume' | 'list';
}

export interface SeenRequest {
  method: string;
  /** bucket/key of the path. */
  path: string;
  range?: string;
  ifMatch?: string;
  /** x-amz-checksum-mode: ENABLED asks S3 for the object's checksum. */
  checksumMode?: string;
  /** The fault injected into this request, if any. */
  fault?: Fault['kind'];
  /** The Range the proxy asked s3rver for instead of the client's, when the fault cuts the body. */
  upstreamRange?: string;
  /**
   * Milliseconds from the request forwarded (written to the connection to s3rver) to s3rver's
   * answer headers as this process sees them: the emulator's share of a request's round trip,
   * plus any pause of this process meanwhile (bench s3-resume).
   */
  upstreamMs?: number;
}

export interface FaultProxy {
  endpoint: string;
  readonly requests: SeenRequest[];
  /** Connections opened to s3rver so far. */
  readonly upstreamConnections: number;
  /** Replaces the rules and forgets how often each fired. */
  setRules(rules: FaultRule[]): void;
  close(): Promise<void>;
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

const unquote = (etag: string | undefined) => etag?.replace(/^W\//, '').replace(/"/g, '');

/** A fault's upstream read cut to the bytes it forwards, and the range the client asked for. */
interface Cut {
  upstream: string;
  /** First byte and last byte asked for (undefined: to the end); `ranged`: the client sent a Range. */
  start: number;
  end: number | undefined;
  ranged: boolean;
}

/**
 * A fault that forwards only `after` bytes reads only those from s3rver: a faulted body read
 * whole would leave megabytes in flight in the socket buffers between s3rver and the proxy at
 * the cut, work S3 does on its own machines but s3rver does on the cores of the reader under
 * test. s3rver does not check SigV4 signatures, so the Range header may be rewritten.
 */
function cutRange(fault: Exclude<Fault, { kind: 'status' }>, range: string | undefined): Cut | undefined {
  if (fault.kind === 'flip' || fault.after <= 0) return undefined;
  const asked = range === undefined ? undefined : /^bytes=(\d+)-(\d*)$/.exec(range);
  if (range !== undefined && !asked) return undefined;
  const start = asked ? Number(asked[1]) : 0;
  const end = asked?.[2] ? Number(asked[2]) : undefined;
  const last = Math.min(end ?? Number.POSITIVE_INFINITY, start + fault.after - 1);
  return { upstream: `bytes=${start}-${last}`, start, end, ranged: asked !== undefined };
}

/** Rewrites a cut 206 answer's status and headers into those of the request as the client sent it. */
function uncut(up: IncomingMessage, cut: Cut): number {
  const status = up.statusCode ?? 502;
  const total = /^bytes \d+-\d+\/(\d+)$/.exec(String(up.headers['content-range'] ?? ''))?.[1];
  if (status !== 206 || total === undefined) return status;
  const last = Math.min(cut.end ?? Number.POSITIVE_INFINITY, Number(total) - 1);
  up.headers['content-length'] = String(last - cut.start + 1);
  if (!cut.ranged) {
    delete up.headers['content-range'];
    return 200;
  }
  up.headers['content-range'] = `bytes ${cut.start}-${last}/${total}`;
  return 206;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  let rules: FaultRule[] = [];
  let fired = new Map<string, number>();
  const requests: SeenRequest[] = [];
  const upstreamSockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const path = decodeURIComponent(url.pathname.slice(1));
    const isObjectRead = req.method === 'GET' && path.includes('/') && !path.endsWith('/');
    const isListing =
      req.method === 'GET' && path !== '' && !isObjectRead && url.searchParams.has('list-type');
    const range = req.headers.range;
    const ifMatch = req.headers['if-match'] as string | undefined;
    const seen: SeenRequest = { method: req.method ?? 'GET', path };
    if (range) seen.range = range;
    if (ifMatch) seen.ifMatch = ifMatch;
    const checksumMode = req.headers['x-amz-checksum-mode'] as string | undefined;
    if (checksumMode) seen.checksumMode = checksumMode;
    requests.push(seen);

    let fault: Fault | undefined;
    if (isObjectRead || isListing) {
      rules.forEach((rule, index) => {
        if (fault) return;
        if ((rule.reads === 'list') !== isListing) return;
        if (rule.keys && !rule.keys.test(path)) return;
        if (rule.reads === 'first' && range) return;
        if (rule.reads === 'resume' && !range) return;
        const id = `${index}\0${path}`;
        const count = fired.get(id) ?? 0;
        if (count >= rule.times) return;
        fired.set(id, count + 1);
        fault = rule.fault;
      });
    }
    if (fault) seen.fault = fault.kind;

    if (fault?.kind === 'status') {
      const { status, code } = fault;
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(errorXml(code, `injected ${code}`));
      });
      return;
    }

    const cut = fault ? cutRange(fault, range) : undefined;
    if (cut) seen.upstreamRange = cut.upstream;
    let forwardedAt: number | undefined;
    const upstreamRequest = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: cut ? { ...req.headers, range: cut.upstream } : req.headers,
      },
      (up) => {
        if (forwardedAt !== undefined) seen.upstreamMs = performance.now() - forwardedAt;
        const status = cut ? uncut(up, cut) : (up.statusCode ?? 502);
        const headers: IncomingHttpHeaders = { ...up.headers };
        if (isObjectRead && ifMatch && status < 300 && unquote(ifMatch) !== unquote(up.headers.etag)) {
          up.resume();
          res.writeHead(412, { 'content-type': 'application/xml' });
          res.end(
            errorXml('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'),
          );
          return;
        }
        if (!fault || status >= 300) {
          res.writeHead(status, headers);
          up.pipe(res);
          return;
        }
        const active = fault;
        if (active.kind === 'flip' && active.checksum) {
          const chunks: Buffer[] = [];
          up.on('data', (chunk: Buffer) => chunks.push(chunk));
          up.on('end', () => {
            const body = Buffer.concat(chunks);
            const crc = Buffer.alloc(4);
            crc.writeUInt32BE(crc32(body));
            const flipped = Buffer.from(body);
            const at = active.at ?? Math.floor(body.length / 2);
            flipped[at] = (flipped[at] as number) ^ 0x01;
            res.writeHead(status, { ...headers, 'x-amz-checksum-crc32': crc.toString('base64') });
            res.end(flipped);
          });
          return;
        }
        if (active.kind === 'stall') {
          res.writeHead(status, headers);
          let sent = 0;
          up.on('data', (chunk: Buffer) => {
            const part = chunk.subarray(0, Math.max(0, active.after - sent));
            sent += part.length;
            if (part.length > 0) res.write(part);
            if (sent >= active.after) up.pause();
          });
          res.on('close', () => up.destroy());
          return;
        }
        if (active.kind === 'early-end') {
          delete headers['content-length'];
          headers['transfer-encoding'] = 'chunked';
        }
        res.writeHead(status, headers);
        if (active.kind === 'reset' && active.after === 0) {
          up.destroy();
          res.flushHeaders();
          res.socket?.destroy();
          return;
        }
        const length = Number(up.headers['content-length'] ?? 0);
        const flipAt = active.kind === 'flip' ? (active.at ?? Math.floor(length / 2)) : -1;
        let sent = 0;
        // A cut answer holds only the bytes to forward: it ends by itself, and its keep-alive
        // connection to s3rver serves the next read (a real reset has no second hop to reopen).
        const whole = !(cut && up.statusCode === 206);
        let cutOff = false;
        // Backpressure as pipe() would: a fault must not change how fast the body flows.
        const send = (data: Buffer, written?: () => void) => {
          if (!res.write(data, written)) {
            up.pause();
            res.once('drain', () => up.resume());
          }
        };
        up.on('data', (chunk: Buffer) => {
          if (active.kind === 'reset' || active.kind === 'early-end') {
            if (sent >= active.after) return;
            const part = chunk.subarray(0, active.after - sent);
            sent += part.length;
            if (sent < active.after) {
              send(part);
              return;
            }
            cutOff = true;
            if (whole) up.destroy();
            else up.resume();
            // The reset comes once the `after` bytes reached the socket, not with them still queued.
            if (active.kind === 'reset') send(part, () => res.socket?.destroy());
            else res.end(part);
            return;
          }
          if (flipAt >= sent && flipAt < sent + chunk.length) {
            const copy = Buffer.from(chunk);
            copy[flipAt - sent] = (copy[flipAt - sent] as number) ^ 0x01;
            chunk = copy;
          }
          sent += chunk.length;
          send(chunk);
        });
        up.on('end', () => {
          if (!res.writableEnded && !cutOff) res.end();
        });
      },
    );
    upstreamRequest.on('socket', (socket) => upstreamSockets.add(socket));
    upstreamRequest.on('finish', () => {
      forwardedAt = performance.now();
    });
    upstreamRequest.on('error', () => res.socket?.destroy());
    req.pipe(upstreamRequest);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    get upstreamConnections() {
      return upstreamSockets.size;
    },
    setRules(next) {
      rules = next;
      fired = new Map();
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
