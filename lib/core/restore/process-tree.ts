import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Rounds of stopping newly found descendants before giving up on a process that keeps forking. */
const STOP_ROUNDS = 20;

/**
 * Kills a process and every descendant it started. A probe runs in the restore's own process
 * group (so whatever kills the restore kills its probes), hence no group of its own to signal:
 * the tree is found by parent id. Each process found is stopped first, so none can fork a new
 * child between the listing and the kill.
 */
export function killProcessTree(pid: number): void {
  const stopped = new Set<number>();
  for (let round = 0; round < STOP_ROUNDS; round++) {
    let fresh = false;
    for (const member of [pid, ...descendants(pid)]) {
      if (stopped.has(member)) continue;
      signal(member, 'SIGSTOP');
      stopped.add(member);
      fresh = true;
    }
    if (!fresh) break;
  }
  for (const member of stopped) signal(member, 'SIGKILL');
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const [child, parent] of processTable()) {
    const list = children.get(parent);
    if (list) list.push(child);
    else children.set(parent, [child]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** [pid, parent pid] of every process: /proc on Linux, `ps` elsewhere. */
function processTable(): Array<[number, number]> {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return psTable();
  }
  const table: Array<[number, number]> = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    table.push([Number(name), Number(fields[1])]);
  }
  return table;
}

function psTable(): Array<[number, number]> {
  try {
    return execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  } catch {
    return [];
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}
