import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './browser.js'

/** Debian's nginx in front of `upstream`, with WebSocket upgrades refused unless `upgrades`; stopped by PID at the end. */
export async function startNginx(t: { teardown(fn: () => unknown): void }, upstream: number, upgrades: boolean): Promise<number> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'realtime-nginx-'))
  const upgrade = upgrades
    ? 'proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";'
    : 'if ($http_upgrade) { return 403; } proxy_set_header Connection "";'
  writeFileSync(
    join(dir, 'nginx.conf'),
    `pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${upstream};
      proxy_http_version 1.1;
      ${upgrade}
      proxy_read_timeout 1h;
    }
  }
}
`
  )
  const nginx: ChildProcess = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' })
  t.teardown(() => {
    nginx.kill('SIGTERM')
  })
  // Ready once it accepts a connection.
  const until = Date.now() + 5000
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/nothing`)
      return port
    } catch (err) {
      if (Date.now() > until) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
