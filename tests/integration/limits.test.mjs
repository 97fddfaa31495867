// Server protections: caps, rate limits, bounded queues, origin allowlist, shutdown.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, Client, announce, offer, id20, metric, waitForMetric } from './harness.mjs'

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
