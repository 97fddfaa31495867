// Server protections: caps, rate limits, bounded queues, origin allowlist, shutdown.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, Client, announce, offer, id20, metric, waitForMetric, waitFor } from './harness.mjs'

test('per-IP connection cap refuses the connection over it', async () => {
  const s = await startServer(['--max-conns-per-ip', '3'])
  try {
    // From 127.0.0.2, so that this test's own /metrics requests (from 127.0.0.1) stay under it.
    const from = { localAddress: '127.0.0.2' }
    const open = await Promise.all([1, 2, 3].map(() => Client.open(s.url, from)))
    await assert.rejects(Client.open(s.url, from))
    assert.equal(await metric(s, 'deploynet_connections_rejected_total{reason="ip_cap"}'), 1)
    open[0].close()
    await open[0].closed
    await waitForMetric(s, 'deploynet_connections', v => v === 2)
    const again = await Client.open(s.url, from) // the slot was released
    again.close()
    open.slice(1).forEach(c => c.close())
  } finally {
    await s.stop()
  }
})

test('rate limit: a failure reason first, then a close 1008 for a flood', async () => {
  const s = await startServer(['--rate', '1', '--burst', '5'])
  try {
    const c = await Client.open(s.url)
    const ih = id20()
    const pid = id20()
    for (let i = 0; i < 5; i++) c.send(announce(ih, pid))
    for (let i = 0; i < 5; i++) assert.equal((await c.next()).info_hash, ih)
    c.send(announce(ih, pid))
    assert.match((await c.next())['failure reason'], /rate limit/)
    for (let i = 0; i < 20; i++) c.send(announce(ih, pid))
    const { code } = await c.closed
    assert.equal(code, 1008)
    assert.ok(await metric(s, 'deploynet_rate_limited_total') >= 6)
    assert.equal(await metric(s, 'deploynet_closed_total{reason="rate_limit"}'), 1)
  } finally {
    await s.stop()
  }
})

test('a client that stops reading is disconnected, not buffered without bound', async () => {
  const s = await startServer(['--rate', '100000', '--burst', '100000',
    '--max-send-queue-bytes', '65536'])
  try {
    const ih = id20()
    const [ps, pf] = [id20(), id20()]
    const slow = await Client.open(s.url)
    slow.send(announce(ih, ps))
    await slow.next()
    slow.ws._socket.pause() // stop reading: the kernel buffers fill, then the server's queue
    const fast = await Client.open(s.url)
    const big = offer(0)
    big.offer.sdp += 'a=x-pad:' + 'p'.repeat(8000) + '\r\n'
    let closedBy = null
    slow.closed.then(() => { closedBy = 'closed' })
    for (let round = 0; round < 2000 && closedBy === null; round++) {
      fast.send(announce(ih, pf, { offers: [big] }))
      if (round % 50 === 49) {
        await fast.flush()
        if (await metric(s, 'deploynet_closed_total{reason="slow_reader"}') > 0) break
      }
    }
    await waitForMetric(s, 'deploynet_closed_total{reason="slow_reader"}', v => v === 1)
    // The fast client is unaffected.
    await fast.flush()
    fast.close()
  } finally {
    await s.stop()
  }
})

test('--allow-origin refuses other origins with 403', async () => {
  const s = await startServer(['--allow-origin', 'https://good.example,https://also.example'])
  try {
    const ok = await Client.open(s.url, { origin: 'https://good.example' })
    ok.close()
    await assert.rejects(Client.open(s.url, { origin: 'https://evil.example' }), /403/)
    assert.equal(await metric(s, 'deploynet_connections_rejected_total{reason="origin"}'), 1)
  } finally {
    await s.stop()
  }
})

test('too many swarms on one connection are refused', async () => {
  const s = await startServer(['--max-swarms-per-conn', '2'])
  try {
    const c = await Client.open(s.url)
    const pid = id20()
    for (let i = 0; i < 2; i++) {
      c.send(announce(id20(), pid))
      assert.ok((await c.next()).complete !== undefined)
    }
    c.send(announce(id20(), pid))
    assert.match((await c.next())['failure reason'], /too many swarms/)
    c.close()
  } finally {
    await s.stop()
  }
})

test('SIGTERM closes clients with 1001 and exits 0', async () => {
  const s = await startServer()
  const c = await Client.open(s.url)
  c.send(announce(id20(), id20()))
  await c.next()
  const exited = s.stop()
  const { code } = await c.closed
  assert.equal(code, 1001)
  assert.deepEqual(await exited, { code: 0, signal: null })
})

test('bad flags exit 2 naming the flag; --help exits 0', async () => {
  const { spawnSync } = await import('node:child_process')
  const { signalBinary } = await import('./harness.mjs')
  const bad = spawnSync(signalBinary, ['--max-frame', '10'], { encoding: 'utf8' })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /--max-frame/)
  const listen = spawnSync(signalBinary, ['--listen', 'nonsense'], { encoding: 'utf8' })
  assert.equal(listen.status, 2)
  assert.match(listen.stderr, /--listen/)
  const help = spawnSync(signalBinary, ['--help'], { encoding: 'utf8' })
  assert.equal(help.status, 0)
  assert.match(help.stdout, /--max-conns-per-ip/)
})

// Runs the server under a lowered open-files limit (bash's ulimit, then exec).
async function startLimited (nofile, args = []) {
  const { spawn } = await import('node:child_process')
  const { signalBinary } = await import('./harness.mjs')
  return spawn('bash', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, signalBinary, '--listen', '127.0.0.1:0', ...args],
    { stdio: ['ignore', 'ignore', 'pipe'] })
}

test('--max-connections defaults below the open-files limit; beyond it a fast 503, never a hang', async () => {
  const proc = await startLimited(128)
  let log = ''
  proc.stderr.on('data', (d) => { log += d })
  try {
    const port = await waitFor(() => Number(/addr=[\d.]+:(\d+)/.exec(log)?.[1]), 10_000, 'listening')
    assert.match(log, /max_connections=64\b/)
    const url = `ws://127.0.0.1:${port}`
    const clients = []
    for (let i = 0; i < 64; i++) clients.push(await Client.open(url, { localAddress: `127.0.1.${1 + (i % 32)}` }))
    const t0 = Date.now()
    await assert.rejects(Client.open(url, { localAddress: '127.0.2.1' }), /HTTP 503/)
    const health = await fetch(`http://127.0.0.1:${port}/health`)
    assert.equal(health.status, 503)
    assert.ok(Date.now() - t0 < 2000, `refused in ${Date.now() - t0} ms`)
    clients.pop().close()
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 10_000, 'a free slot')
    for (const c of clients) c.close()
  } finally {
    proc.kill('SIGTERM')
  }
})

test('--max-connections above the open-files limit is refused at start, naming the flag', async () => {
  const proc = await startLimited(128, ['--max-connections', '1000'])
  let err = ''
  proc.stderr.on('data', (d) => { err += d })
  const code = await new Promise((resolve) => proc.on('exit', resolve))
  assert.equal(code, 2)
  assert.match(err, /--max-connections: 1000 is above what the open-files limit allows/)
})

test('one address opening connections too fast gets 429 beyond its burst', async () => {
  const s = await startServer(['--conn-rate-per-ip', '1', '--conn-burst-per-ip', '5'])
  try {
    const from = { localAddress: '127.0.0.5' }
    const open = []
    for (let i = 0; i < 5; i++) open.push(await Client.open(s.url, from))
    await assert.rejects(Client.open(s.url, from), /HTTP 429/)
    assert.equal(await metric(s, 'deploynet_connections_rejected_total{reason="ip_rate"}'), 1)
    // Other addresses are not affected.
    const other = await Client.open(s.url, { localAddress: '127.0.0.6' })
    other.close()
    for (const c of open) c.close()
  } finally {
    await s.stop()
  }
})

test('--max-offers: offers past the cap are dropped and counted; --max-scrape: a larger scrape is refused', async () => {
  const s = await startServer(['--max-offers', '2', '--max-scrape', '3'])
  try {
    const ih = id20()
    const receivers = []
    for (let i = 0; i < 4; i++) {
      const c = await Client.open(s.url, { localAddress: `127.0.60.${i + 1}` })
      c.send(announce(ih, id20()))
      await c.next((m) => m.action === 'announce' && m.interval)
      receivers.push(c)
    }
    const sender = await Client.open(s.url, { localAddress: '127.0.60.9' })
    sender.send(announce(ih, id20(), { offers: [offer(1), offer(2), offer(3), offer(4)] }))
    await sender.next((m) => m.action === 'announce' && m.interval)
    assert.equal(await waitForMetric(s, 'deploynet_dropped_total{reason="offers_over_cap"}', (v) => v === 2), 2)
    for (const c of receivers) await c.flush()
    const delivered = receivers.reduce((n, c) => n + c.messages.filter((m) => m.offer).length, 0)
    assert.equal(delivered, 2)
    sender.send({ action: 'scrape', info_hash: [id20(), id20(), id20(), id20()] })
    assert.match((await sender.next((m) => m['failure reason']))['failure reason'], /too many info_hash/)
    sender.send({ action: 'scrape', info_hash: [ih, id20(), id20()] })
    const scrape = await sender.next((m) => m.action === 'scrape')
    assert.equal(scrape.files[ih].incomplete, 5)
    for (const c of [...receivers, sender]) c.close()
  } finally {
    await s.stop()
  }
})

test('--max-numwant caps the peers one announce reaches, whatever numwant asks', async () => {
  const s = await startServer(['--max-numwant', '2'])
  try {
    const ih = id20()
    const receivers = []
    for (let i = 0; i < 5; i++) {
      const c = await Client.open(s.url)
      c.send(announce(ih, id20()))
      await c.next((m) => m.interval)
      receivers.push(c)
    }
    const sender = await Client.open(s.url)
    sender.send(announce(ih, id20(), { numwant: 50, offers: [offer(1), offer(2), offer(3), offer(4), offer(5)] }))
    await sender.next((m) => m.interval)
    for (const c of receivers) await c.flush()
    assert.equal(receivers.reduce((n, c) => n + c.messages.filter((m) => m.offer).length, 0), 2)
    for (const c of [...receivers, sender]) c.close()
  } finally {
    await s.stop()
  }
})

test('--offer-ttl: an answer after the offer expired is dropped, one in time is relayed', async () => {
  const s = await startServer(['--offer-ttl', '1'])
  try {
    const ih = id20()
    const [pa, pb] = [id20(), id20()]
    const a = await Client.open(s.url)
    a.send(announce(ih, pa))
    await a.next((m) => m.interval)
    const b = await Client.open(s.url)
    const late = offer(1)
    b.send(announce(ih, pb, { offers: [late] }))
    await a.next((m) => m.offer)
    await new Promise((resolve) => setTimeout(resolve, 1300))
    a.send(announce(ih, pa, { to_peer_id: pb, offer_id: late.offer_id, answer: { type: 'answer', sdp: 'late' } }))
    await waitForMetric(s, 'deploynet_dropped_total{reason="answer_unmatched"}', (v) => v === 1)
    const timely = offer(2)
    b.send(announce(ih, pb, { offers: [timely] }))
    await a.next((m) => m.offer && m.offer_id === timely.offer_id)
    a.send(announce(ih, pa, { to_peer_id: pb, offer_id: timely.offer_id, answer: { type: 'answer', sdp: 'ok' } }))
    assert.equal((await b.next((m) => m.answer)).answer.sdp, 'ok')
    assert.equal(b.messages.filter((m) => m.answer).length, 0)
    a.close(); b.close()
  } finally {
    await s.stop()
  }
})

test('--max-send-queue: a client that stops reading is dropped after that many queued messages', async () => {
  // The byte cap is out of the way; only the message count can trip.
  const s = await startServer(['--rate', '100000', '--burst', '16', '--max-send-queue', '16',
    '--max-send-queue-bytes', String(64 << 20)])
  try {
    const ih = id20()
    const slow = await Client.open(s.url)
    slow.send(announce(ih, id20()))
    await slow.next()
    slow.ws._socket.pause()
    const fast = await Client.open(s.url)
    const pf = id20()
    const big = offer(0)
    big.offer.sdp += 'a=x-pad:' + 'p'.repeat(8000) + '\r\n'
    // The sender reads its replies as it goes (bursts of 8, under the cap): only the client
    // that stopped reading may be dropped.
    for (let round = 0; round < 4000; round++) {
      fast.send(announce(ih, pf, { offers: [big] }))
      if (round % 8 === 7) await fast.flush()
      if (round % 64 === 63 && await metric(s, 'deploynet_closed_total{reason="slow_reader"}') > 0) break
    }
    assert.equal(await waitForMetric(s, 'deploynet_closed_total{reason="slow_reader"}', (v) => v === 1), 1)
    await fast.flush() // still connected
    fast.close()
  } finally {
    await s.stop()
  }
})

test('--threads: connections on different I/O threads relay to each other', async () => {
  const s = await startServer(['--threads', '3'])
  try {
    assert.match(s.log(), /threads=3/)
    const ih = id20()
    const peers = []
    for (let i = 0; i < 6; i++) { // handed to the threads in turn
      const c = await Client.open(s.url)
      const id = id20()
      c.send(announce(ih, id))
      await c.next((m) => m.interval)
      peers.push({ c, id })
    }
    const o = offer(1)
    peers[0].c.send(announce(ih, peers[0].id, { offers: [{ ...o, to_peer_id: peers[4].id }] }))
    const got = await peers[4].c.next((m) => m.offer)
    peers[4].c.send(announce(ih, peers[4].id, { to_peer_id: peers[0].id, offer_id: got.offer_id, answer: { type: 'answer', sdp: 'x' } }))
    assert.equal((await peers[0].c.next((m) => m.answer)).peer_id, peers[4].id)
    for (const p of peers) p.c.close()
  } finally {
    await s.stop()
  }
})

test('IPv6 visitors (through a trusted proxy): route answers put peers of the asker\'s /48 first', async () => {
  const s = await startServer(['--trusted-proxy', '127.0.0.1'])
  try {
    const ih = id20()
    const join = async (xff) => {
      const c = await Client.open(s.url, { headers: { 'X-Forwarded-For': xff } })
      const id = id20()
      c.send(announce(ih, id))
      await c.next((m) => m.interval)
      return { c, id }
    }
    const asker = await join('2001:db8:aa:1::1')
    const near = await join('2001:db8:aa:ffff::9') // same /48, another /64
    const others = []
    for (const a of ['2001:db8:ab::1', '2001:db8:ac::1', '2001:db9:aa::1', '203.0.113.5']) others.push(await join(a))
    const ids = Array.from({ length: 12 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32))
    asker.c.send({ action: 'route', info_hash: ih, peer_id: asker.id, content_ids: ids, k: 8 })
    const reply = await asker.c.next((m) => m.action === 'route')
    for (const r of reply.routes) {
      assert.equal(r.peers.length, 5)
      assert.equal(r.peers[0], near.id, 'the peer of the same /48 comes first')
    }
    // Seen from a peer of another /48, the near peer is not first everywhere.
    const far = others[0]
    far.c.send({ action: 'route', info_hash: ih, peer_id: far.id, content_ids: ids, k: 8 })
    const farReply = await far.c.next((m) => m.action === 'route')
    assert.ok(farReply.routes.some((r) => r.peers[0] !== near.id))
    for (const p of [asker, near, ...others]) p.c.close()
  } finally {
    await s.stop()
  }
})
