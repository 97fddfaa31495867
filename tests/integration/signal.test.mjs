// The signaling server over real sockets: protocol behaviour as a WebTorrent tracker.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, Client, announce, offer, id20, metric, waitForMetric, waitFor } from './harness.mjs'

let server
before(async () => { server = await startServer() })
after(async () => { await server.stop() })

test('GET /health, /metrics and an unknown path', async () => {
  const health = await (await fetch(`${server.http}/health`)).json()
  assert.equal(health.status, 'ok')
  assert.equal(typeof health.connections, 'number')
  const metrics = await fetch(`${server.http}/metrics`)
  assert.match(metrics.headers.get('content-type'), /text\/plain/)
  const text = await metrics.text()
  assert.match(text, /# TYPE deploynet_connections gauge/)
  assert.match(text, /deploynet_handle_seconds_bucket\{le="\+Inf"\}/)
  assert.equal((await fetch(`${server.http}/nope`)).status, 404)
})

test('announce gets counts, interval and its info_hash back', async () => {
  const c = await Client.open(server.url)
  const ih = id20()
  c.send(announce(ih, id20(), { event: 'started', left: 10, numwant: 0 }))
  const reply = await c.next()
  assert.deepEqual(reply, { action: 'announce', interval: 120, info_hash: ih, complete: 0, incomplete: 1 })
  c.close()
})

test('offers reach other peers and the answer comes back, exactly', async () => {
  const ih = id20()
  const [pa, pb] = [id20(), id20()]
  const a = await Client.open(server.url)
  const b = await Client.open(server.url)
  a.send(announce(ih, pa, { event: 'started' }))
  await a.next(m => m.complete !== undefined)

  const o = offer(1)
  b.send(announce(ih, pb, { event: 'started', numwant: 1, offers: [o] }))
  const breply = await b.next(m => m.complete !== undefined)
  assert.equal(breply.incomplete, 2)

  const got = await a.next(m => m.offer)
  assert.deepEqual(got, { action: 'announce', offer: o.offer, offer_id: o.offer_id, peer_id: pb, info_hash: ih })

  const answer = { type: 'answer', sdp: 'v=0\r\nanswer\r\n' }
  a.send(announce(ih, pa, { to_peer_id: pb, answer, offer_id: o.offer_id }))
  const relayed = await b.next(m => m.answer)
  assert.deepEqual(relayed, { action: 'announce', answer, offer_id: o.offer_id, peer_id: pa, info_hash: ih })

  // An answer gets no reply of its own (as the reference server), and nothing else came.
  await a.flush()
  await b.flush()
  assert.deepEqual(a.messages, [])
  assert.deepEqual(b.messages, [])
  a.close()
  b.close()
})

test('binary ids with bytes above 0x7f are relayed byte for byte', async () => {
  const ih = id20(true)
  const [pa, pb] = [id20(true), id20(true)]
  const o = offer(2, id20(true))
  const a = await Client.open(server.url)
  const b = await Client.open(server.url)
  a.send(announce(ih, pa))
  assert.equal((await a.next()).info_hash, ih)
  b.send(announce(ih, pb, { offers: [o] }))
  const got = await a.next(m => m.offer)
  assert.equal(got.peer_id, pb)
  assert.equal(got.offer_id, o.offer_id)
  assert.equal(got.info_hash, ih)
  a.close()
  b.close()
})

test('each offer goes to a different peer, never back to its sender', async () => {
  const ih = id20()
  const peers = await Promise.all(Array.from({ length: 5 }, () => Client.open(server.url)))
  const ids = peers.map(() => id20())
  for (let i = 0; i < 5; i++) {
    peers[i].send(announce(ih, ids[i]))
    await peers[i].next()
  }
  const offers = [offer(1), offer(2), offer(3)]
  peers[0].send(announce(ih, ids[0], { offers }))
  await peers[0].next(m => m.complete !== undefined)
  const received = []
  for (let i = 1; i < 5; i++) {
    await peers[i].flush()
    received.push(...peers[i].messages.filter(m => m.offer).map(m => ({ to: i, id: m.offer_id })))
    assert.ok(peers[i].messages.filter(m => m.offer).length <= 1)
  }
  await peers[0].flush()
  assert.equal(peers[0].messages.filter(m => m.offer).length, 0)
  assert.equal(received.length, 3)
  assert.deepEqual(new Set(received.map(r => r.id)), new Set(offers.map(o => o.offer_id)))
  peers.forEach(p => p.close())
})

test('an answer to an offer never made is dropped', async () => {
  const ih = id20()
  const victim = await Client.open(server.url)
  const mallory = await Client.open(server.url)
  const [pv, pm] = [id20(), id20()]
  victim.send(announce(ih, pv))
  await victim.next()
  mallory.send(announce(ih, pm))
  await mallory.next()
  const before = await metric(server, 'deploynet_answers_relayed_total')
  mallory.send(announce(ih, pm, { to_peer_id: pv, offer_id: id20(), answer: { type: 'answer', sdp: 'x' } }))
  await mallory.flush()
  await victim.flush()
  assert.deepEqual(victim.messages, [])
  assert.equal(await metric(server, 'deploynet_answers_relayed_total'), before)
  victim.close()
  mallory.close()
})

test('scrape: one, several, all; stopped and closed peers leave', async () => {
  const [ih1, ih2] = [id20(), id20()]
  const a = await Client.open(server.url)
  const b = await Client.open(server.url)
  const [pa, pb] = [id20(), id20()]
  a.send(announce(ih1, pa, { left: 0, event: 'completed' }))
  await a.next()
  b.send(announce(ih1, pb, { left: 5 }))
  await b.next()
  b.send(announce(ih2, pb, { left: 5 }))
  await b.next()

  a.send({ action: 'scrape', info_hash: ih1 })
  let s = await a.next(m => m.action === 'scrape')
  assert.deepEqual(s.files[ih1], { complete: 1, incomplete: 1, downloaded: 1 })

  a.send({ action: 'scrape', info_hash: [ih1, ih2] })
  s = await a.next(m => m.action === 'scrape')
  assert.deepEqual(Object.keys(s.files).sort(), [ih1, ih2].sort())
  assert.equal(s.files[ih2].incomplete, 1)

  a.send({ action: 'scrape' })
  s = await a.next(m => m.action === 'scrape')
  assert.ok(s.files[ih1] && s.files[ih2])

  b.send(announce(ih1, pb, { event: 'stopped' }))
  const stopped = await b.next()
  assert.equal(stopped.incomplete, 0)
  assert.equal(stopped.complete, 1)

  b.close()
  await b.closed
  // The closed socket leaves ih2: its swarm is gone.
  await waitFor(async () => {
    a.send({ action: 'scrape', info_hash: ih2 })
    s = await a.next(m => m.action === 'scrape')
    return s.files[ih2].incomplete === 0
  }, 10_000, 'the closed socket leaving its swarm')
  assert.deepEqual(s.files[ih2], { complete: 0, incomplete: 0, downloaded: 0 })
  a.close()
})

test('bad input gets a failure reason and the connection goes on', async () => {
  const c = await Client.open(server.url)
  const cases = [
    ['{not json', /^invalid JSON/],
    ['[1,2]', /not a JSON object/],
    [JSON.stringify({ action: 'connect' }), /invalid action/],
    [JSON.stringify(announce('short', id20())), /invalid info_hash/],
    [JSON.stringify(announce(id20(), 42)), /invalid peer_id/],
    [JSON.stringify(announce(id20(), '\u0100' + id20().slice(1))), /invalid peer_id/],
    [JSON.stringify(announce(id20(), id20(), { offers: 'x' })), /invalid offers/],
    [JSON.stringify(announce(id20(), id20(), { answer: { sdp: 'x' } })), /to_peer_id/],
    ['[' .repeat(30000) + ']'.repeat(30000), /nested deeper than 32/]
  ]
  for (const [frame, reason] of cases) {
    c.send(frame)
    const reply = await c.next()
    assert.match(reply['failure reason'], reason, frame.slice(0, 40))
  }
  const failure = await (async () => {
    c.send(JSON.stringify(announce('bad', id20())))
    return c.next()
  })()
  assert.equal(failure.action, 'announce')
  const ih = id20()
  c.send(announce(ih, id20()))
  assert.equal((await c.next()).info_hash, ih)
  assert.ok(await metric(server, 'deploynet_messages_received_total{type="invalid"}') >= cases.length)
  c.close()
})

test('a peer id owned by a live connection cannot be taken over', async () => {
  const ih = id20()
  const pid = id20()
  const owner = await Client.open(server.url)
  const thief = await Client.open(server.url)
  owner.send(announce(ih, pid))
  await owner.next()
  thief.send(announce(ih, pid))
  assert.match((await thief.next())['failure reason'], /already in use/)
  owner.close()
  thief.close()
})

test('a frame over --max-frame closes with 1009', async () => {
  const c = await Client.open(server.url)
  c.send(JSON.stringify({ action: 'scrape', pad: 'x'.repeat(70 * 1024) }))
  const { code } = await c.closed
  assert.equal(code, 1009)
  await waitForMetric(server, 'deploynet_closed_total{reason="frame_too_big"}', v => v >= 1)
})

test('a TCP connection that never speaks is closed after the handshake timeout', async () => {
  const s = await startServer(['--handshake-timeout', '1'])
  try {
    const net = await import('node:net')
    const sock = net.connect(s.port, '127.0.0.1')
    const start = Date.now()
    await new Promise(resolve => sock.on('close', resolve))
    assert.ok(Date.now() - start >= 900)
  } finally {
    await s.stop()
  }
})
