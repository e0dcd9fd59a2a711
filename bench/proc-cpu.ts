/**
 * CPU time (user + system, ms) from /proc (Linux): of a process, or of one of its threads. Beside
 * latencies that follow the machine's load, CPU is what the measured processes themselves cost,
 * whatever else runs (bench/rollback.bench.ts per rollback and idle, bench/idle-cpu.ts per thread).
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux we run on (sysconf(_SC_CLK_TCK) is not reachable from Node). */
const USER_HZ = 100;

/**
 * Name and CPU ms of a `/proc/…/stat` line. The name sits in parentheses and may itself hold
 * spaces or `) `, so the fields are counted from the last `) ` (utime and stime are 14th and 15th).
 */
function parseStat(stat: string): { name: string; cpuMs: number } {
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return { name, cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / USER_HZ };
}

/** CPU ms a process (all its threads) has used so far; null when it cannot be read (gone, not Linux). */
export function cpuMs(pid: number): number | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).cpuMs;
  } catch {
    return null;
  }
}

/** Name and CPU ms of one thread of `pid`; throws when the thread has ended (callers skip it). */
export function threadCpu(pid: number, tid: string): { name: string; cpuMs: number } {
  return parseStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
}
