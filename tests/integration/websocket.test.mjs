// The server's own WebSocket layer (RFC 6455) over real sockets: handshake checks, pings,
// fragmented messages, the close handshake, and protocol violations from a raw TCP client.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { randomBytes, createHash } from 'node:crypto'
import { startServer, Client, announce, id20, withTimeout, waitForMetric } from './harness.mjs'

let server
before(async () => { server = await startServer() })
after(async () => { await server.stop() })

// A raw TCP client that performs the upgrade by hand, so tests can send any bytes at all.
async function rawUpgrade (port, headers = {}) {
  const sock = net.connect(port, '127.0.0.1')
  const key = randomBytes(16).toString('base64')
  const lines = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...headers
  }
  let req = 'GET / HTTP/1.1\r\n'
  for (const [k, v] of Object.entries(lines)) if (v !== null) req += `${k}: ${v}\r\n`
  sock.write(req + '\r\n')
  let data = Buffer.alloc(0)
  const ended = new Promise(resolve => sock.on('close', resolve))
  sock.on('data', chunk => { data = Buffer.concat([data, chunk]) })
  const head = await withTimeout(new Promise((resolve, reject) => {
    const check = () => {
      const end = data.indexOf('\r\n\r\n')
      if (end >= 0) {
        resolve(data.subarray(0, end).toString())
        data = data.subarray(end + 4)
      }
    }
    sock.on('data', check)
    sock.on('error', reject)
  }), 5000, 'upgrade response')
  return { sock, key, head, ended, rest: () => data }
}

function maskedFrame (opcode, payload, { fin = true, mask = true } = {}) {
  const body = Buffer.from(payload)
  const header = [(fin ? 0x80 : 0) | opcode]
  if (body.length < 126) header.push((mask ? 0x80 : 0) | body.length)
  else header.push((mask ? 0x80 : 0) | 126, body.length >> 8, body.length & 0xff)
  if (!mask) return Buffer.concat([Buffer.from(header), body])
  const key = randomBytes(4)
  const masked = Buffer.from(body.map((b, i) => b ^ key[i & 3]))
  return Buffer.concat([Buffer.from(header), key, masked])
}

test('the upgrade answers with the right Sec-WebSocket-Accept', async () => {
  const { sock, key, head } = await rawUpgrade(server.port)
  assert.match(head, /^HTTP\/1\.1 101/)
  const expected = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
  assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${expected.replace(/[+/]/g, c => '\\' + c)}`))
  sock.destroy()
})

test('a wrong WebSocket version gets 426, a missing key 400', async () => {
  const v = await rawUpgrade(server.port, { 'Sec-WebSocket-Version': '8' })
  assert.match(v.head, /^HTTP\/1\.1 426/)
  assert.match(v.head, /Sec-WebSocket-Version: 13/)
  v.sock.destroy()
  const k = await rawUpgrade(server.port, { 'Sec-WebSocket-Key': null })
  assert.match(k.head, /^HTTP\/1\.1 400/)
  k.sock.destroy()
})

test('ping gets pong; a fragmented message is assembled', async () => {
  const c = await Client.open(server.url)
  const pong = new Promise(resolve => c.ws.once('pong', data => resolve(String(data))))
  c.ws.ping('hello')
  assert.equal(await withTimeout(pong, 5000, 'pong'), 'hello')
  const ih = id20()
  const text = JSON.stringify(announce(ih, id20()))
  c.ws.send(text.slice(0, 10), { fin: false })
  c.ws.send(text.slice(10, 30), { fin: false })
  c.ws.send(text.slice(30), { fin: true })
  assert.equal((await c.next()).info_hash, ih)
  c.close()
})

test('the client close code is echoed and the connection ends', async () => {
  const c = await Client.open(server.url)
  c.ws.close(4000, 'bye')
  const { code } = await c.closed
  assert.equal(code, 4000)
})

test('frames sent right behind the upgrade request are not lost', async () => {
  const sock = net.connect(server.port, '127.0.0.1')
  const ih = id20()
  await new Promise(resolve => sock.on('connect', resolve))
  sock.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  sock.write(maskedFrame(1, JSON.stringify(announce(ih, id20()))))
  let data = Buffer.alloc(0)
  await withTimeout(new Promise(resolve => sock.on('data', chunk => {
    data = Buffer.concat([data, chunk])
    if (data.includes(Buffer.from(ih))) resolve()
  })), 5000, 'reply to the early frame')
  sock.destroy()
})

for (const [name, frame, code] of [
  ['an unmasked client frame', () => maskedFrame(1, '{}', { mask: false }), 1002],
  ['a reserved opcode', () => maskedFrame(3, 'x'), 1002],
  ['a continuation with no message', () => maskedFrame(0, 'x'), 1002],
  ['a control frame over 125 bytes', () => maskedFrame(9, 'x'.repeat(126)), 1002],
  ['a text frame that is not UTF-8', () => maskedFrame(1, Buffer.from([0x7b, 0xed, 0xb0, 0x80, 0x7d])), 1007],
  ['a text message whose fragments are not UTF-8 together', () => Buffer.concat([
    maskedFrame(1, Buffer.from([0x22, 0xc3]), { fin: false }), maskedFrame(0, Buffer.from([0x28, 0x22]))]), 1007],
  ['close code 999', () => maskedFrame(8, Buffer.from([0x03, 0xe7])), 1002],
  ['close code 1005 (never sent)', () => maskedFrame(8, Buffer.from([0x03, 0xed])), 1002],
  ['close code 2000 (unassigned)', () => maskedFrame(8, Buffer.from([0x07, 0xd0])), 1002],
  ['a close reason that is not UTF-8', () => maskedFrame(8, Buffer.from([0x03, 0xe8, 0xff])), 1007]
]) {
  test(`${name} closes with ${code}`, async () => {
    const { sock, ended, rest } = await rawUpgrade(server.port)
    sock.write(frame())
    await withTimeout(ended, 5000, 'server close')
    const bytes = rest()
    assert.equal(bytes[0], 0x88, 'a close frame first')
    assert.equal(bytes.readUInt16BE(2), code)
  })
}

test('protocol errors are counted', async () => {
  await waitForMetric(server, 'deploynet_closed_total{reason="protocol_error"}', v => v >= 4)
})

test('a silent client is pinged at half the idle timeout and closed 1001 at the end of it', async () => {
  const s = await startServer(['--idle-timeout', '2'])
  try {
    const { ended, rest } = await rawUpgrade(s.port)
    const start = Date.now()
    await withTimeout(ended, 6000, 'idle close')
    assert.ok(Date.now() - start >= 1500, 'not closed before the timeout')
    const bytes = rest()
    assert.deepEqual([...bytes.subarray(0, 2)], [0x89, 0x00], 'an empty ping first')
    assert.equal(bytes[2], 0x88, 'then a close frame')
    assert.equal(bytes.readUInt16BE(4), 1001)
    await waitForMetric(s, 'deploynet_closed_total{reason="idle"}', v => v === 1)
  } finally {
    await s.stop()
  }
})
