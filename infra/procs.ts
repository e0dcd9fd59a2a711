/**
 * Process, port and log-file helpers for the local stack. Kept free of Kafka/registry knowledge
 * so stack.ts reads as the orchestration only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import net from 'node:net';

/**
 * The command line of `pid`, or null when there is no such live process. Zombies have an empty
 * cmdline in /proc, so they count as gone, which is what callers waiting for an exit want.
 */
export function processCmdline(pid: number): string[] | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const proc = `/proc/${pid}/cmdline`;
  if (existsSync('/proc/self/cmdline')) {
    try {
      const parts = readFileSync(proc, 'utf8').split('\0').filter((s) => s.length > 0);
      return parts.length > 0 ? parts : null;
    } catch {
      return null;
    }
  }
  // macOS and other systems without /proc: ps gives a space-joined command line, which is enough
  // for the marker comparison because our marker argument contains no spaces of its own.
  try {
    const out = execFileSync('ps', ['-o', 'stat=,command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    if (!out || out.startsWith('Z')) return null;
    return out.replace(/^\S+\s+/, '').split(/\s+/);
  } catch {
    return null;
  }
}

/** True when `pid` is alive and carries `marker` as one of its arguments. */
export function isOurProcess(pid: number, marker: string): boolean {
  const cmd = processCmdline(pid);
  if (!cmd) return false;
  // ps-based command lines may split a marker that contains spaces; compare on the joined form.
  return cmd.includes(marker) || cmd.join(' ').includes(marker);
}

export function readPid(file: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * SIGTERM, wait up to `graceMs` for the process to go, then SIGKILL. Refuses to signal a pid that
 * no longer carries our marker: after a reboot or a crash the pid may belong to someone else.
 */
export async function stopProcess(pid: number, marker: string, graceMs: number): Promise<'stopped' | 'killed' | 'not-running'> {
  if (!isOurProcess(pid, marker)) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isOurProcess(pid, marker)) return 'stopped';
    await sleep(200);
  }
  if (!isOurProcess(pid, marker)) return 'stopped';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'stopped';
  }
  const killDeadline = Date.now() + 5000;
  while (Date.now() < killDeadline && isOurProcess(pid, marker)) await sleep(100);
  return 'killed';
}

/** Whether we could bind 127.0.0.1:port right now. */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Whether something accepts TCP connections on host:port within `timeoutMs`. */
export function tcpOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export function tailFile(file: string, lines = 30): string {
  try {
    const all = readFileSync(file, 'utf8').split('\n');
    if (all.length && all[all.length - 1] === '') all.pop();
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log file yet)';
  }
}

/** Keep the previous run's log next to the new one: it is usually the one explaining a crash. */
export function rotateLog(file: string): void {
  if (existsSync(file)) {
    try {
      renameSync(file, `${file}.1`);
    } catch {
      /* a log we cannot rotate is not a reason to refuse to start */
    }
  }
}

/**
 * Start a long-lived process detached in its own process group with output appended to
 * `logFile`: a Ctrl-C in the terminal then reaches only our Node process, which decides whether to
 * stop the stack, and `stack up` can exit while the services keep running.
 */
export function spawnDetached(cmd: string, args: string[], cwd: string, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', fd, fd], env: process.env });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/**
 * Run a command to completion, streaming each output line to `onLine`; resolves with the exit code
 * and the last lines so a failure can be reported without rerunning.
 */
export function runStreaming(
  cmd: string,
  args: string[],
  opts: { cwd?: string; onLine?: (line: string) => void; logFile?: string } = {},
): Promise<{ code: number; tail: string[] }> {
  return new Promise((resolve, reject) => {
    const fd = opts.logFile ? openSync(opts.logFile, 'a') : null;
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const tail: string[] = [];
    let buf = '';
    const onData = (chunk: Buffer) => {
      if (fd !== null) {
        try {
          // append, not keep in memory: Maven output of a cold fetch runs to thousands of lines
          writeSync(fd, chunk);
        } catch {
          /* logging is best effort */
        }
      }
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        tail.push(line);
        if (tail.length > 40) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // A command that cannot start emits 'error' and then 'close'; settle and close the fd once.
    let settled = false;
    const closeFd = () => {
      if (fd !== null && !settled) closeSync(fd);
      settled = true;
    };
    child.once('error', (err) => {
      closeFd();
      reject(err);
    });
    child.once('close', (code) => {
      if (buf) {
        tail.push(buf);
        opts.onLine?.(buf);
      }
      if (settled) return;
      closeFd();
      resolve({ code: code ?? 1, tail });
    });
  });
}

