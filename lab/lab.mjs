// The network lab: visitors in their own home networks behind NAT, an origin and a signaling
// server (with coturn for STUN/TURN) far away, joined by an "internet" router, every link with a
// capacity, a one-way delay, jitter and loss (deploynet-lab-link; this kernel has no netem).
//
//   internet (ns inet) ── link ── origin (nginx)            198.18.1.2
//                      ── link ── signal (signal, coturn)   198.18.2.2
//                      ── link ── home k (NAT router)       198.18.(10+k).2
//                                   └─ veth ── pc k (Chromium)  198.19.k.2
//
// Addresses come from 198.18.0.0/15 and exist only inside the namespaces the lab makes; nothing
// touches the root namespace's network. Every process is stopped by pid and every namespace
// deleted on every exit path (normal end, exception, SIGINT/SIGTERM); namespaces a killed run
// left behind are removed by the next run. Needs root (ip netns, /dev/net/tun, iptables).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, execFileSync } from 'node:child_process'
import { originConf, readAccessLog } from '../scripts/nginx.mjs'

const here = path.dirname(new URL(import.meta.url).pathname)
export const root = path.resolve(here, '..')
const PREFIX = 'dnl'
export const ORIGIN_ADDR = '198.18.1.2'
export const SIGNAL_ADDR = '198.18.2.2'
export const SIGNAL_PORT = 8000
export const TURN_PORT = 3478

export function loadProfile (name) {
  const file = fs.existsSync(name) ? name : path.join(here, 'profiles', `${name}.json`)
  if (!fs.existsSync(file)) {
    const known = fs.readdirSync(path.join(here, 'profiles')).map((f) => f.replace(/\.json$/, ''))
    throw new Error(`unknown lab profile '${name}' (known: ${known.join(', ')})`)
  }
  const p = JSON.parse(fs.readFileSync(file, 'utf8'))
  for (const k of ['access', 'origin', 'signal']) p[k] = { ...p[k] }
  return p
}

// Whether this machine can run the lab at all (root, ip netns, TUN, iptables).
export function labSupport () {
  if (process.getuid?.() !== 0) return 'needs root'
  if (!fs.existsSync('/dev/net/tun')) return 'no /dev/net/tun'
  for (const b of ['/usr/sbin/ip', '/usr/sbin/iptables', '/usr/bin/turnserver']) {
    if (!fs.existsSync(b)) return `missing ${b}`
  }
  return ''
}

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }).toString()
const nsList = () => sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter(Boolean)

function killNamespace (ns) {
  // Whatever still runs in it (a browser's helpers, a server a test forgot) dies with it.
  let pids = []
  try { pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number) } catch {}
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch {} }
  try { sh('ip', ['netns', 'del', ns]) } catch {}
}

// Namespaces of lab runs whose process is gone (killed with SIGKILL, machine reset).
export function removeStaleLabs () {
  for (const ns of nsList()) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(ns)
    if (!m) continue
    let alive = true
    try { process.kill(Number(m[1]), 0) } catch { alive = false }
    if (!alive || Number(m[1]) === process.pid) killNamespace(ns)
  }
}

const live = new Set()
let hooked = false
function hookExit () {
  if (hooked) return
  hooked = true
  process.on('exit', () => { for (const lab of live) lab.destroySync() })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      for (const lab of live) lab.destroySync()
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
    })
  }
}

function linkSpec (a, b, l) {
  const kv = []
  if (l.up_mbit) kv.push(`ab_mbit=${l.up_mbit}`)
  if (l.down_mbit) kv.push(`ba_mbit=${l.down_mbit}`)
  if (l.delay_ms) kv.push(`delay_ms=${l.delay_ms}`)
  if (l.jitter_ms) kv.push(`jitter_ms=${l.jitter_ms}`)
  if (l.loss_pct) kv.push(`loss_pct=${l.loss_pct}`)
  if (l.queue_ms) kv.push(`queue_ms=${l.queue_ms}`)
  return [a, b, ...kv].join(' ')
}

export class Lab {
  /**
   * @param {object} o
   * @param {string|object} o.profile  profile name (lab/profiles) or object
   * @param {number} o.visitors        home networks (one browser each)
   * @param {string} [o.linkBinary]    deploynet-lab-link
   */
  static async create ({ profile = 'lan', visitors = 2, linkBinary } = {}) {
    const why = labSupport()
    if (why) throw new Error(`network lab unavailable: ${why}`)
    hookExit()
    removeStaleLabs()
    const lab = new Lab(typeof profile === 'string' ? loadProfile(profile) : profile, visitors,
      linkBinary ?? process.env.DEPLOYNET_LAB_LINK ?? path.join(root, 'build/release/lab/deploynet-lab-link'))
    live.add(lab)
    try {
      await lab.build()
    } catch (err) {
      await lab.destroy()
      throw err
    }
    return lab
  }

  constructor (profile, visitors, linkBinary) {
    this.profile = profile
    this.visitors = visitors
    this.linkBinary = linkBinary
    this.id = `${PREFIX}${process.pid}-${Math.random().toString(36).slice(2, 6)}`
    this.work = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-lab-'))
    this.procs = []
    this.namespaces = []
    this.destroyed = false
  }

  ns (name) { return `${this.id}-${name}` }
  home (k) { return this.ns(`h${k}`) }
  pc (k) { return this.ns(`p${k}`) }
  pcAddr (k) { return `198.19.${k}.2` }
  publicAddr (k) { return `198.18.${10 + k}.2` }

  ip (...args) { return sh('ip', args) }
  nsExec (ns, cmd, args) { return sh('ip', ['netns', 'exec', ns, cmd, ...args]) }

  async build () {
    const p = this.profile
    const nodes = [['origin', 1, p.origin], ['signal', 2, p.signal]]
    for (let k = 1; k <= this.visitors; k++) nodes.push([`h${k}`, 10 + k, p.access])
    for (const name of ['inet', ...nodes.map((n) => n[0]), ...Array.from({ length: this.visitors }, (_, i) => `p${i + 1}`)]) {
      this.ip('netns', 'add', this.ns(name))
      this.namespaces.push(this.ns(name))
      this.ip('-n', this.ns(name), 'link', 'set', 'lo', 'up')
    }
    // Links: one process for all of them; "up" is from the node towards the internet.
    const specs = nodes.map(([name, , l]) => linkSpec(`${this.ns(name)}:wan`, `${this.ns('inet')}:n${name}`, l))
    const link = spawn(this.linkBinary, specs, { stdio: ['pipe', 'pipe', 'pipe'] })
    this.procs.push(link)
    this.linkLog = ''
    link.stderr.on('data', (d) => { this.linkLog += d })
    await new Promise((resolve, reject) => {
      let out = ''
      link.stdout.on('data', (d) => { out += d; if (out.includes('ready')) resolve() })
      link.on('exit', (code) => reject(new Error(`deploynet-lab-link exited ${code}: ${this.linkLog}`)))
      link.on('error', reject)
    })
    this.sysctl('inet', 'net.ipv4.ip_forward=1')
    for (const [name, n] of nodes) {
      this.ip('-n', this.ns(name), 'addr', 'add', `198.18.${n}.2/30`, 'dev', 'wan')
      this.ip('-n', this.ns(name), 'link', 'set', 'wan', 'up')
      this.ip('-n', this.ns(name), 'route', 'add', 'default', 'dev', 'wan')
      this.ip('-n', this.ns('inet'), 'addr', 'add', `198.18.${n}.1/30`, 'dev', `n${name}`)
      this.ip('-n', this.ns('inet'), 'link', 'set', `n${name}`, 'up')
    }
    for (let k = 1; k <= this.visitors; k++) this.buildHome(k)
  }

  sysctl (name, kv) { this.nsExec(this.ns(name), 'sysctl', ['-qw', kv]) }

  // A home router with NAT as consumer routers do it: endpoint-independent mapping (source
  // ports kept, so STUN hole punching works), only replies let in.
  buildHome (k) {
    const h = this.home(k)
    const pc = this.pc(k)
    this.ip('link', 'add', 'lan', 'netns', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pc)
    this.ip('-n', h, 'addr', 'add', `198.19.${k}.1/24`, 'dev', 'lan')
    this.ip('-n', h, 'link', 'set', 'lan', 'up')
    this.ip('-n', pc, 'addr', 'add', `${this.pcAddr(k)}/24`, 'dev', 'eth0')
    this.ip('-n', pc, 'link', 'set', 'eth0', 'up')
    this.ip('-n', pc, 'route', 'add', 'default', 'via', `198.19.${k}.1`)
    this.sysctl(`h${k}`, 'net.ipv4.ip_forward=1')
    const ipt = (...a) => this.nsExec(h, 'iptables', a)
    ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE')
    ipt('-P', 'FORWARD', 'DROP')
    ipt('-A', 'FORWARD', '-i', 'lan', '-o', 'wan', '-j', 'ACCEPT')
    ipt('-A', 'FORWARD', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
    // Without this, the other peer's first ICE check makes a conntrack entry (and an ICMP
    // unreachable) that pushes MASQUERADE onto a new port, and hole punching fails.
    ipt('-A', 'INPUT', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP')
  }

  /** Starts `cmd` inside a lab namespace; stopped by pid at the end. */
  spawnIn (name, cmd, args, opts = {}) {
    const p = spawn('ip', ['netns', 'exec', this.ns(name), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    this.procs.push(p)
    p.output = ''
    p.stdout?.on('data', (d) => { p.output += d })
    p.stderr?.on('data', (d) => { p.output += d })
    p.exited = new Promise((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })))
    return p
  }

  /** nginx serving `siteDir` on the origin, with a JSON access log (one line per request). */
  async startOrigin (siteDir) {
    const dir = path.join(this.work, 'nginx')
    fs.mkdirSync(dir, { recursive: true })
    this.accessLogFile = path.join(dir, 'access.log')
    fs.writeFileSync(path.join(dir, 'nginx.conf'), originConf(dir, { listen: `${ORIGIN_ADDR}:80`, root: siteDir, accessLog: this.accessLogFile }))
    const p = this.spawnIn('origin', '/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')])
    await this.waitTcp('origin', ORIGIN_ADDR, 80, p)
    return p
  }

  accessLog () { return readAccessLog(this.accessLogFile) }

  clearAccessLog () { fs.writeFileSync(this.accessLogFile, '') }

  /** coturn on the signal host: STUN and TURN (TURN REST API credentials from `secret`). */
  async startTurn (secret) {
    const dir = path.join(this.work, 'coturn')
    fs.mkdirSync(dir, { recursive: true })
    this.turnLogFile = path.join(dir, 'turn.log')
    const args = ['-n', '--listening-ip', SIGNAL_ADDR, '--relay-ip', SIGNAL_ADDR, '--listening-port', String(TURN_PORT),
      '--min-port', '49152', '--max-port', '49999', '--use-auth-secret', '--static-auth-secret', secret,
      '--realm', 'deploynet.lab', '--no-tls', '--no-dtls', '--no-cli', '--fingerprint', '--simple-log',
      '--log-file', this.turnLogFile, '--pidfile', path.join(dir, 'turn.pid'), '--userdb', path.join(dir, 'turndb'),
      '--no-stdout-log', '--verbose']
    const p = this.spawnIn('signal', '/usr/bin/turnserver', args)
    this.turn = p
    await this.waitUdpLog(() => this.turnLog(), /listener opened on|Total General servers|relay.*opened/i, p)
    return p
  }

  turnLog () {
    // coturn appends a date to --log-file names with --simple-log off; with it on, the name is exact.
    try { return fs.readFileSync(this.turnLogFile, 'utf8') } catch { return '' }
  }

  /** deploynet-signal on the signal host, port 8000. */
  async startSignal (binary, args = []) {
    const p = this.spawnIn('signal', binary, ['--listen', `${SIGNAL_ADDR}:${SIGNAL_PORT}`, ...args], {
      env: { ...process.env, ...(this.turnSecret ? { DEPLOYNET_TURN_SECRET: this.turnSecret } : {}) },
    })
    await this.waitTcp('signal', SIGNAL_ADDR, SIGNAL_PORT, p)
    return p
  }

  async waitTcp (name, addr, port, proc, ms = 10_000) {
    const deadline = Date.now() + ms
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${proc.spawnargs.slice(4).join(' ')} exited: ${proc.output}`)
      const out = this.nsExec(this.ns(name), 'ss', ['-ltnH'])
      if (out.includes(`${addr}:${port} `)) return
      if (Date.now() > deadline) throw new Error(`nothing listens on ${addr}:${port} in ${name}: ${proc.output}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async waitUdpLog (read, re, proc, ms = 10_000) {
    const deadline = Date.now() + ms
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${proc.spawnargs.slice(4, 5)} exited: ${proc.output}${read()}`)
      if (re.test(read())) return
      if (Date.now() > deadline) throw new Error(`not up in time: ${read()}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /**
   * A Chromium executable for visitor k: a wrapper that starts Debian's Chromium inside the
   * visitor's own namespace, and the flags it needs there.
   */
  browser (k) {
    const wrapper = path.join(this.work, `chromium-${k}`)
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${this.pc(k)} /usr/lib/chromium/chromium "$@"\n`, { mode: 0o755 })
    return {
      executablePath: wrapper,
      args: [
        // No resolver is reachable from a home namespace: resolve nothing, but IP literals.
        `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${ORIGIN_ADDR}, EXCLUDE ${SIGNAL_ADDR}`,
        // A secure context (service worker, crypto.subtle) for the origin's plain-HTTP address.
        `--unsafely-treat-insecure-origin-as-secure=http://${ORIGIN_ADDR}`,
      ],
    }
  }

  /**
   * Firefox for visitor k: a wrapper that starts Debian's Firefox ESR inside the visitor's own
   * namespace, its WebDriver BiDi socket bridged to the host's loopback (netns-firefox.mjs),
   * and the preferences it needs there.
   */
  firefox (k) {
    const wrapper = path.join(this.work, `firefox-${k}`)
    const firefox = process.env.FIREFOX ?? '/usr/bin/firefox-esr'
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${path.join(here, 'netns-firefox.mjs')} ${this.pc(k)} ${firefox} "$@"\n`, { mode: 0o755 })
    return {
      executablePath: wrapper,
      prefs: {
        // A secure context (service worker, crypto.subtle) for the origin's plain-HTTP address.
        'dom.securecontext.allowlist': ORIGIN_ADDR,
        'dom.serviceWorkers.testing.enabled': true,
        // With the origin taken as secure, Firefox would upgrade its plain-HTTP images to https
        // (mixed display content) and never load them: the page's images, as served.
        'security.mixed_content.upgrade_display_content': false,
      },
    }
  }

  /** Stops every process by pid, deletes every namespace (and with them their interfaces). */
  async destroy () {
    if (this.destroyed) return
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM')
    await Promise.race([
      Promise.all(this.procs.map((p) => p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('exit', r)))),
      new Promise((r) => setTimeout(r, 3000)),
    ])
    this.destroySync()
  }

  destroySync () {
    if (this.destroyed) return
    this.destroyed = true
    live.delete(this)
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) { try { p.kill('SIGKILL') } catch {} }
    for (const ns of [...this.namespaces].reverse()) killNamespace(ns)
    fs.rmSync(this.work, { recursive: true, force: true })
  }

  /** Namespaces of this lab that still exist (a test asserts none after destroy). */
  leftovers () { return nsList().filter((n) => n.startsWith(this.id)) }
}
