// Firefox inside a lab visitor's network namespace, for puppeteer-core. Firefox's WebDriver BiDi
// socket listens on the namespace's own loopback, which the test process (in the host's
// namespace) cannot reach; this bridges it: a port on the host's loopback whose every
// connection is carried into the namespace by a helper (this file with --connect), and the
// endpoint Firefox prints is rewritten to that port for puppeteer to read.
//
//   node netns-firefox.mjs NAMESPACE FIREFOX [firefox's arguments]   (started by puppeteer)
//   node netns-firefox.mjs --connect PORT                             (in the namespace)
import net from 'node:net'
import readline from 'node:readline'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
const [mode, ...rest] = process.argv.slice(2)

if (mode === '--connect') {
  const sock = net.connect(Number(rest[0]), '127.0.0.1')
  process.stdin.pipe(sock)
  sock.pipe(process.stdout)
  sock.on('error', () => process.exit(1))
  sock.on('close', () => process.exit(0))
} else {
  const ns = mode
  const [firefox, ...args] = rest
  const child = spawn('ip', ['netns', 'exec', ns, firefox, ...args], { stdio: ['ignore', 'inherit', 'pipe'] })
  const bridges = new Set()
  let server = null
  const bridge = (port) => new Promise((resolve) => {
    server = net.createServer((conn) => {
      const hop = spawn('ip', ['netns', 'exec', ns, process.execPath, self, '--connect', String(port)], { stdio: ['pipe', 'pipe', 'ignore'] })
      bridges.add(hop)
      conn.pipe(hop.stdin)
      hop.stdout.pipe(conn)
      const end = () => { conn.destroy(); hop.kill('SIGTERM'); bridges.delete(hop) }
      conn.on('close', end)
      conn.on('error', end)
      hop.on('exit', end)
    })
    // The same port number on the host's loopback: Firefox refuses a connection whose Host
    // header names another port (400).
    server.on('error', (err) => {
      process.stderr.write(`netns-firefox: cannot bridge port ${port} to the host: ${err.message}\n`)
      child.kill('SIGTERM')
    })
    server.listen(port, '127.0.0.1', () => resolve(server.address().port))
  })
  readline.createInterface({ input: child.stderr }).on('line', async (line) => {
    const m = /^WebDriver BiDi listening on ws:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)(.*)$/.exec(line)
    if (!m) { process.stderr.write(`${line}\n`); return }
    const port = await bridge(Number(m[1]))
    process.stderr.write(`WebDriver BiDi listening on ws://127.0.0.1:${port}${m[2]}\n`)
  })
  const stop = (sig) => { if (child.exitCode === null) child.kill(sig) }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => stop(sig))
  child.on('exit', (code, sig) => {
    for (const hop of bridges) hop.kill('SIGTERM')
    server?.close()
    process.exit(code ?? (sig ? 1 : 0))
  })
}
