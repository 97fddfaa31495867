// nginx configurations for the demo, the network lab and the tests, written in one place: a
// private instance (its own pid, error log and temporary directories under `dir`, in the
// foreground) with the `http` or `stream` blocks a caller needs, and the origin every one of
// them serves a site from (the JSON access log the benches and tests read).
import fs from 'node:fs'
import path from 'node:path'

/** The text of an nginx.conf for a private instance under `dir` (its temporary directories made). */
export function nginxConf (dir, { http, stream, user = false, workerConnections = 1024, rlimit, modules = [] }) {
  const tmp = path.join(dir, 'tmp')
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(tmp, d), { recursive: true })
  return [
    ...modules.map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`),
    user ? 'user root;' : '',
    'worker_processes 1;',
    'daemon off;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    rlimit ? `worker_rlimit_nofile ${rlimit};` : '',
    `events { worker_connections ${workerConnections}; }`,
    http === undefined
      ? ''
      : `http {
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
${http}
}`,
    stream === undefined ? '' : `stream {\n${stream}\n}`,
    '',
  ].filter((l, i, all) => l !== '' || i === all.length - 1).join('\n')
}

/**
 * A site's origin (the access log started empty): `root` served on `listen` with no-cache (every view revalidates, as the
 * plain site would be measured), one JSON line per request in `accessLog`
 * (path, status, bytes, range, ua, ms).
 */
export function originConf (dir, { listen, root, accessLog, workerConnections = 1024 }) {
  fs.writeFileSync(accessLog, '')
  return nginxConf(dir, {
    user: true,
    workerConnections,
    http: `  include /etc/nginx/mime.types;
  types { font/ttf ttf; }  # mime.types has application/wasm already
  log_format deploynet escape=json '{"path":"$uri","status":$status,"bytes":$body_bytes_sent,"range":"$http_range","ua":"$http_user_agent","ms":$request_time}';
  access_log ${accessLog} deploynet;
  sendfile on;
  server {
    listen ${listen};
    root ${root};
    index index.html;
    add_header Cache-Control no-cache;
  }`,
  })
}

/** The entries of an access log written by `originConf`. */
export function readAccessLog (file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
}
