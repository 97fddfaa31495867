// make demo: the signaling server, the demo site on a real origin (nginx, with its access log)
// and a swarm of headless Chromium visitors, one after another and overlapping; then a table of
// who got which bytes from where. Also used by `make bench` (P2P on against P2P off).
//
//   VISITORS=6  STAGGER_MS=3000  READ_MS=1500 (on each of 3 pages)  BUDGET_MS=1500  SIGNAL_PORT=8000  WEB_PORT=8080
//   CLUSTER=3 (the signaling server as a cluster of 3 nodes over a redis-server, behind a
//   round-robin TCP balancer on SIGNAL_PORT, as in production)
//   P2P=off (everything over HTTP)  HOLD=1|0 (keep serving for a desktop browser until Ctrl-C;
//   default: when stdout is a terminal)
import fs from 'node:fs'
import path from 'node:path'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { visitor, loadControlledPage, makeDemoSite } from '../tests/browser/harness.mjs'
import { originConf } from './nginx.mjs'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const env = process.env
const VISITORS = Number(env.VISITORS ?? 6)
const STAGGER = Number(env.STAGGER_MS ?? 3000)
const BUDGET = Number(env.BUDGET_MS ?? 1500)
const SIGNAL_PORT = Number(env.SIGNAL_PORT ?? 8000)
const WEB_PORT = Number(env.WEB_PORT ?? 8080)
const HOLD = env.HOLD ? env.HOLD === '1' : process.stdout.isTTY
const P2P = env.P2P !== 'off'
const CLUSTER = Number(env.CLUSTER ?? 0)
const work = path.join(root, '.demo')
const site = path.join(work, 'site')
const web = `http://127.0.0.1:${WEB_PORT}`
const bin = (p) => path.join(root, 'build/release', p)
process.env.DEPLOYNET_CLI ??= bin('cli/deploynet')

const children = []
let browsers = []
async function stopAll () {
  for (const v of browsers) await v.close().catch(() => {})
  browsers = []
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
}
process.on('SIGINT', async () => { console.log('\nstopping…'); await stopAll(); process.exit(130) })
process.on('SIGTERM', async () => { await stopAll(); process.exit(143) })

function waitHttp (url, ms = 10_000) {
  const deadline = Date.now() + ms
  return (async function poll () {
    try { if ((await fetch(url)).status < 500) return } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not come up`)
    await new Promise((r) => setTimeout(r, 100))
    return poll()
  })()
}

export function buildSite () {
  fs.rmSync(site, { recursive: true, force: true })
  return makeDemoSite(site, web, `ws://127.0.0.1:${SIGNAL_PORT}`, BUDGET)
}

function startNginx () {
  fs.writeFileSync(path.join(work, 'nginx.conf'), originConf(work, { listen: `127.0.0.1:${WEB_PORT}`, root: site, accessLog: path.join(work, 'access.log'), workerConnections: 512 }))
  const p = spawn('/usr/sbin/nginx', ['-p', work, '-c', path.join(work, 'nginx.conf')], { stdio: 'inherit' })
  children.push(p)
  return p
}

const nodePorts = []
async function startSignal () {
  if (!CLUSTER) {
    const p = spawn(bin('server/deploynet-signal'), ['--listen', `127.0.0.1:${SIGNAL_PORT}`, '--log-level', 'warn'], { stdio: 'inherit' })
    children.push(p)
    return
  }
  // A cluster: redis-server, CLUSTER nodes, and a TCP balancer handing connections out in turn.
  const { startRedis, freePort } = await import('../tests/integration/harness.mjs')
  const redisPort = await freePort()
  const redis = await startRedis(redisPort)
  children.push(redis.proc)
  for (let i = 1; i <= CLUSTER; i++) {
    const port = await freePort()
    children.push(spawn(bin('server/deploynet-signal'), ['--listen', `127.0.0.1:${port}`, '--log-level', 'warn',
      '--redis', `redis://127.0.0.1:${redisPort}`, '--node-id', String(i)], { stdio: 'inherit' }))
    nodePorts.push(port)
  }
  for (const port of nodePorts) await waitHttp(`http://127.0.0.1:${port}/health`)
  let next = 0
  const balancer = net.createServer((client) => {
    const upstream = net.connect(nodePorts[next++ % nodePorts.length], '127.0.0.1')
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise((resolve) => balancer.listen(SIGNAL_PORT, '127.0.0.1', resolve))
  children.push({ exitCode: null, kill: () => balancer.close() })
}

async function clusterReport () {
  if (!CLUSTER) return
  let relayed = 0; let crossed = 0
  for (const port of nodePorts) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    const get = (name) => Number(text.split('\n').find((l) => l.startsWith(name + ' '))?.split(' ')[1] ?? 0)
    relayed += get('deploynet_offers_relayed_total') + get('deploynet_answers_relayed_total')
    crossed += get('deploynet_cluster_relays_sent_total')
  }
  console.log(`signaling cluster: ${CLUSTER} nodes over Redis; ${crossed} of ${relayed} offers and answers crossed nodes`)
}

export function accessLog () {
  return fs.readFileSync(path.join(work, 'access.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

// One visitor: a fresh browser reading the site's three pages, one after the other, as people
// do. Returns each page's load time and the engine's figures summed over the pages.
const PAGES = ['index.html', 'gallery.html', 'about.html']
const READ_MS = Number(env.READ_MS ?? 1500)
async function visit (name, p2p) {
  const v = await visitor(name, p2p ? {} : { initScript: 'window.DeployNetConfig = { p2p: false }' })
  browsers.push(v)
  const sum = { bytesFromPeers: 0, bytesFromOrigin: 0, bytesFromCache: 0, bytesAdopted: 0, bytesUploaded: 0, assets: [] }
  const loads = []
  let imagesOk = true
  for (const page of PAGES) {
    const r = await loadControlledPage(v, `${web}/${page}`)
    await new Promise((resolve) => setTimeout(resolve, READ_MS))
    const stats = await v.page.evaluate(async () => (await window.deploynet)?.stats())
    for (const k of Object.keys(sum)) if (k !== 'assets') sum[k] += stats[k]
    sum.assets.push(...stats.assets)
    loads.push(r.ms)
    imagesOk &&= r.imagesOk
    if (env.DEMO_DEBUG) {
      for (const a of stats.assets) console.log(`  ${name} ${page} ${a.path} peers=${a.fromPeers} origin=${a.fromOrigin} ${a.originReason ?? ''}${a.prefetch ? ' (prefetch)' : ''}`)
    }
  }
  return { name, ms: loads.reduce((a, b) => a + b, 0) / loads.length, imagesOk, stats: sum }
}

export async function runSwarm ({ quiet = false, p2p = P2P } = {}) {
  const say = quiet ? () => {} : console.log
  fs.mkdirSync(work, { recursive: true })
  const manifest = buildSite()
  const assets = new Set(manifest.files.map((f) => f.path).filter((p) => !p.endsWith('.html')))
  await startSignal()
  startNginx()
  await waitHttp(`http://127.0.0.1:${SIGNAL_PORT}/health`)
  await waitHttp(`${web}/index.html`)
  say(`demo site: ${manifest.files.length} files, ${(manifest.files.reduce((a, f) => a + f.size, 0) / 1048576).toFixed(1)} MiB; ` +
    `origin ${web} (nginx), signaling ws://127.0.0.1:${SIGNAL_PORT}; ${VISITORS} visitors, one every ${STAGGER} ms` +
    (p2p ? '' : ', P2P off') + (CLUSTER ? `; signaling: ${CLUSTER}-node cluster over Redis behind a balancer` : ''))
  const runs = []
  for (let i = 0; i < VISITORS; i++) {
    runs.push(visit(`v${i + 1}`, p2p))
    if (i + 1 < VISITORS) await new Promise((r) => setTimeout(r, STAGGER))
  }
  const results = await Promise.all(runs)
  const log = accessLog()
  const rows = results.map((r) => {
    const mine = log.filter((e) => e.ua.endsWith(`visitor-${r.name}`))
    return { ...r, originBytes: mine.reduce((a, e) => a + e.bytes, 0),
      assetRequests: mine.filter((e) => assets.has(e.path)).length, requests: mine.length }
  })
  return { rows, assets, manifest }
}

function report ({ rows, assets }) {
  const kib = (n) => (n / 1024).toFixed(0).padStart(8)
  console.log(`\neach visitor reads ${PAGES.join(', ')}; page load is the mean of the three`)
  console.log('visitor   from peers (KiB)  from origin (KiB)  origin requests  page load (ms)  images')
  for (const r of rows) {
    console.log(`${r.name.padEnd(8)} ${kib(r.stats.bytesFromPeers)}          ${kib(r.originBytes)}          ` +
      `${String(r.requests).padStart(6)}        ${r.ms.toFixed(0).padStart(8)}        ${r.imagesOk ? 'ok' : 'MISSING'}`)
  }
  const peers = rows.reduce((a, r) => a + r.stats.bytesFromPeers, 0)
  const origin = rows.reduce((a, r) => a + r.originBytes, 0)
  const later = rows.slice(1)
  const laterPeers = later.reduce((a, r) => a + r.stats.bytesFromPeers, 0)
  const laterAsset = later.reduce((a, r) => a + r.stats.bytesFromPeers + r.stats.bytesFromOrigin + r.stats.bytesFromCache + r.stats.bytesAdopted, 0)
  const perVisitor = rows[0].assetRequests
  const assetReqs = rows.reduce((a, r) => a + r.assetRequests, 0)
  console.log(`\nbytes served by peers: ${(100 * peers / (peers + origin)).toFixed(1)}% of all bytes the visitors loaded ` +
    `(${(peers / 1048576).toFixed(2)} MiB of ${((peers + origin) / 1048576).toFixed(2)} MiB, HTML and DeployNet's own files included)`)
  if (later.length) {
    console.log(`asset bytes from peers, visitors after the first: ${(100 * laterPeers / Math.max(1, laterAsset)).toFixed(1)}%`)
  }
  console.log(`origin requests for assets: ${assetReqs} (without P2P: ${perVisitor} per visitor x ${rows.length} = ${perVisitor * rows.length}): ` +
    `${(100 * (1 - assetReqs / Math.max(1, perVisitor * rows.length))).toFixed(1)}% fewer`)
  return { peers, origin, laterShare: laterPeers / Math.max(1, laterAsset), assetReqs, baseline: perVisitor * rows.length }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const run = await runSwarm()
    report(run)
    await clusterReport()
    if (HOLD) {
      console.log(`\nOpen ${web}/ in a desktop browser to join the swarm (the visitors stay online). Ctrl-C stops everything.`)
      await new Promise(() => {})
    }
  } catch (err) {
    console.error('demo failed:', err.message)
    process.exitCode = 1
  } finally {
    if (!HOLD) await stopAll()
  }
}
export { report, stopAll }
