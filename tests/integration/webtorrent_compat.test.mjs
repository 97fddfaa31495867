// Interoperability with a client nobody here wrote: the `bittorrent-tracker` npm client, with
// real WebRTC in Node (@roamhq/wrtc). Two of its peers find each other through our server,
// complete a WebRTC connection and exchange data over the data channel.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { register } from 'node:module'
import wrtc from '@roamhq/wrtc'
import { startServer, withTimeout } from './harness.mjs'

register('./webrtc-polyfill-hook.mjs', import.meta.url)
const { default: Client } = await import('bittorrent-tracker')

function trackerClient (url, infoHash) {
  return new Client({
    infoHash,
    peerId: randomBytes(20).toString('hex'), // binary on the wire: bytes above 0x7f included
    announce: [url],
    port: 6881,
    wrtc,
    rtcConfig: { iceServers: [] }
  })
}

function firstConnectedPeer (client) {
  return new Promise((resolve, reject) => {
    client.on('error', reject)
    client.on('peer', peer => {
      if (peer.connected) resolve(peer)
      else peer.once('connect', () => resolve(peer))
    })
  })
}

test('two bittorrent-tracker clients connect over WebRTC through our server', async () => {
  const server = await startServer()
  const infoHash = randomBytes(20).toString('hex')
  const a = trackerClient(server.url, infoHash)
  const b = trackerClient(server.url, infoHash)
  const warnings = []
  for (const c of [a, b]) c.on('warning', err => warnings.push(err.message))
  try {
    const updates = new Promise(resolve => a.once('update', resolve))
    a.start()
    const update = await withTimeout(updates, 10000, 'first announce reply')
    assert.equal(update.incomplete + update.complete, 1)

    const peerA = firstConnectedPeer(a)
    const peerB = firstConnectedPeer(b)
    b.start()
    const [pa, pb] = await withTimeout(Promise.all([peerA, peerB]), 20000, 'WebRTC connection')

    const payload = randomBytes(4096)
    const received = new Promise(resolve => pb.once('data', resolve))
    pa.send(payload)
    assert.deepEqual(Buffer.from(await withTimeout(received, 10000, 'data')), payload)

    const scrape = new Promise(resolve => a.once('scrape', resolve))
    a.scrape()
    const s = await withTimeout(scrape, 10000, 'scrape')
    assert.equal(s.complete + s.incomplete, 2)
    assert.deepEqual(warnings, [])
    pa.destroy()
    pb.destroy()
  } finally {
    a.destroy()
    b.destroy()
    await server.stop()
  }
})
