// Messages crafted to hurt other peers or the server: each once did, each must now be harmless.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, Client, announce, id20, metric } from './harness.mjs'

test('an offer with a lone surrogate escape reaches its target as valid UTF-8', async () => {
  const s = await startServer()
  try {
    const ih = id20()
    const [victimId, attackerId] = [id20(), id20()]
    const victim = await Client.open(s.url)
    victim.send(announce(ih, victimId))
    await victim.next(m => m.action === 'announce' && m.interval)
    const attacker = await Client.open(s.url)
    // Sent as raw text: JSON.stringify would never write a lone surrogate escape itself.
    const offerJson = '{"type":"offer","sdp":"v=0\\udc00\\udfff"}'
    attacker.send(`{"action":"announce","info_hash":"${ih}","peer_id":"${attackerId}",` +
      `"offers":[{"offer_id":"${id20()}","offer":${offerJson},"to_peer_id":"${victimId}"}]}`)
    // `ws` fails a connection (1007) on a text frame that is not UTF-8, as browsers do.
    const got = await victim.next(m => m.offer)
    assert.equal(got.offer.sdp, 'v=0\udc00\udfff')
    assert.equal(got.peer_id, attackerId)
    await victim.flush() // still connected and served
    assert.equal(victim.ws.readyState, 1)
    victim.close()
    attacker.close()
  } finally {
    await s.stop()
  }
})

test('an offer nested 120,000 deep is refused; the server and other swarms carry on', async () => {
  const s = await startServer(['--max-frame', '262144'])
  try {
    const ih = id20()
    const attacker = await Client.open(s.url)
    const deep = '['.repeat(120000) + ']'.repeat(120000)
    attacker.send(`{"action":"announce","info_hash":"${ih}","peer_id":"${id20()}",` +
      `"offers":[{"offer_id":"${id20()}","offer":{"a":${deep}}}]}`)
    const reply = await attacker.next()
    assert.match(reply['failure reason'], /nested deeper than 32/)
    const health = await fetch(`${s.http}/health`)
    assert.equal(health.status, 200)
    assert.equal(s.proc.exitCode, null)
    assert.equal(await metric(s, 'deploynet_connections'), 1)
    attacker.close()
  } finally {
    await s.stop()
  }
})
