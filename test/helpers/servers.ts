/**
 * Real servers on 127.0.0.1 for tests: Node's http, Debian's nginx and ftp-srv. Every one
 * listens on an ephemeral port and is closed by the test that started it.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createNetServer, Socket, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, writeFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Running {
  port: number;
  /** `http://127.0.0.1:PORT` + path */
  url(path: string): string;
  close(): Promise<void>;
}

/** A Node http server with the given handler (an async one's promise is not awaited). */
export async function startHttp(handler: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<Running & { server: Server }> {
  const server = createServer((req, res) => void handler(req, res));
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A server of strings: `bodyOf(request path)`, with its Content-Length, or a 404 when it gives none. */
export function startStrings(bodyOf: (path: string) => string | undefined): Promise<Running & { server: Server }> {
  return startHttp((req, res) => {
    const body = bodyOf(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

/** A port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The repository root (from test/helpers under vitest, or dist/test/helpers when built). */
export function repoRoot(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('cannot find the repository root');
    dir = up;
  }
  return dir;
}

/** Makes sure Debian's nginx is installed (scripts/ensure-nginx.sh) and returns its binary. */
export function ensureNginx(): string {
  const script = join(repoRoot(), 'scripts', 'ensure-nginx.sh');
  return execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
}

/**
 * nginx serving `root` on an ephemeral port, with `serverConf` added inside its `server {}`
 * block (locations, redirects...). Runs in the foreground of a child process.
 */
export async function startNginx(root: string, serverConf = ''): Promise<Running & { dir: string }> {
  const bin = ensureNginx();
  const dir = mkdtempSync(join(tmpdir(), 'fodder-nginx-'));
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  let lastErr = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await deadPort();
    writeFileSync(
      join(dir, 'nginx.conf'),
      `
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  sendfile on;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    ${serverConf}
  }
}
`,
    );
    const child: ChildProcess = spawn(bin, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const up = await waitForPort(port, 5000, child);
    if (up) {
      return {
        port,
        dir,
        url: (path) => `http://127.0.0.1:${port}${path}`,
        // its configuration, logs and temporary files go with it
        close: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null) {
              r();
              return;
            }
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }).then(() => rmSync(dir, { recursive: true, force: true })),
      };
    }
    child.kill('SIGKILL');
    lastErr = stderr + (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`nginx did not start: ${lastErr}`);
}

async function waitForPort(port: number, ms: number, child: ChildProcess): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((r) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** ftp-srv logs through bunyan; tests want silence. */
const quietLog = {
  child() {
    return quietLog;
  },
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
};

/** An anonymous, read-only FTP server (ftp-srv) serving `root`. */
export async function startFtp(root: string): Promise<Running> {
  const { FtpSrv } = await import('ftp-srv');
  const port = await deadPort();
  const pasvMin = 20000 + Math.floor(Math.random() * 20000);
  const server = new FtpSrv({
    url: `ftp://127.0.0.1:${port}`,
    pasv_url: '127.0.0.1',
    pasv_min: pasvMin,
    pasv_max: pasvMin + 50,
    anonymous: true,
    greeting: 'fodder test ftp',
    log: quietLog,
  });
  server.on('login', (_data, resolveLogin) => resolveLogin({ root }));
  await server.listen();
  return {
    port,
    url: (path) => `ftp://127.0.0.1:${port}${path}`,
    close: async () => {
      await server.close();
    },
  };
}
