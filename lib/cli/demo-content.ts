/** Building blocks of the demo's sample files: deterministic bytes, text, tars and dumps, made with Node alone. */
import { createHash } from 'node:crypto';
import { buffer as collect } from 'node:stream/consumers';
import zlib from 'node:zlib';
import tarStream, { type Header as TarHeader } from 'tar-stream';

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic incompressible bytes (stands in for photos, images, video). */
function noise(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let at = 0;
  for (let counter = 0; at < size; counter++) {
    at += createHash('sha256').update(`${seed}:${counter}`).digest().copy(out, at);
  }
  return out;
}

export function fakeJpeg(seed: string, size: number): Buffer {
  const start = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);
  return Buffer.concat([start, noise(seed, size), Buffer.from([0xff, 0xd9])]);
}

export function fakePng(seed: string, size: number): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), noise(seed, size)]);
}

/** Deterministic text-like lines, compressible like real logs and assets. */
export function textLines(
  seed: number,
  count: number,
  line: (i: number, pick: (words: string[]) => string) => string,
) {
  let x = seed * 2654435761 || 1;
  const pick = (words: string[]): string => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return words[(x >>> 0) % words.length] as string;
  };
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(line(i, pick));
  return `${lines.join('\n')}\n`;
}

export function gzip(data: Buffer | string): Buffer {
  return zlib.gzipSync(data, { level: 6 });
}

export function coreutilsLines(
  files: Array<{ path: string; content: Buffer | string; binary?: boolean }>,
): string {
  return [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${sha256Hex(f.content)} ${f.binary ? '*' : ' '}${f.path}\n`)
    .join('');
}

export interface TarMember {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  content?: Buffer | string;
  linkname?: string;
  mode?: number;
}

/** A tar with ustar headers, owned by root like a container's export; every member dated `mtime`. */
export async function packTar(members: TarMember[], mtime: Date): Promise<Buffer> {
  const pack = tarStream.pack();
  const collected = collect(pack);
  for (const member of members) {
    const type = member.type ?? 'file';
    const header: Partial<TarHeader> & { name: string } = {
      name: member.name,
      type,
      mtime,
      mode: member.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
    };
    if (member.linkname !== undefined) header.linkname = member.linkname;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (type === 'file') pack.entry(header, member.content ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  return collected;
}

/** Files of a tar plus a `SHA256SUMS` at its root listing every one of them. */
export function withRootManifest(files: Array<{ name: string; content: Buffer | string }>): TarMember[] {
  const sums = coreutilsLines(files.map((f) => ({ path: f.name, content: f.content })));
  return [...files.map((f) => ({ name: f.name, content: f.content })), { name: 'SHA256SUMS', content: sums }];
}

export function pgDump(options: { complete: boolean; invoices: number }): string {
  const head = `-- PostgreSQL database dump
--

-- Dumped from database version 16.4
-- Dumped by pg_dump version 16.4

SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET client_min_messages = warning;

SET default_tablespace = '';
SET default_table_access_method = heap;

--
-- Name: invoices; Type: TABLE; Schema: public; Owner: billing
--

CREATE TABLE public.invoices (
    id integer NOT NULL,
    customer text NOT NULL,
    amount_cents bigint NOT NULL,
    issued_at date NOT NULL,
    paid boolean DEFAULT false NOT NULL
);

ALTER TABLE public.invoices OWNER TO billing;

--
-- Data for Name: invoices; Type: TABLE DATA; Schema: public; Owner: billing
--

COPY public.invoices (id, customer, amount_cents, issued_at, paid) FROM stdin;
`;
  const customers = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell'];
  const rows = textLines(
    5,
    options.invoices,
    (i, pick) =>
      `${i + 1}\t${pick(customers)}\t${((i * 7919) % 900_000) + 1000}\t2025-0${(i % 6) + 1}-${String((i % 28) + 1).padStart(2, '0')}\t${i % 3 === 0 ? 't' : 'f'}`,
  );
  if (!options.complete) {
    // The dump stops mid-row, as when pg_dump is killed or the disk fills during COPY.
    return head + rows.slice(0, Math.floor(rows.length * 0.6));
  }
  return `${head}${rows}\\.

--
-- Name: invoices invoices_pkey; Type: CONSTRAINT; Schema: public; Owner: billing
--

ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);

--
-- PostgreSQL database dump complete
`;
}
