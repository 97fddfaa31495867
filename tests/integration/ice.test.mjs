// ICE servers from the signaling server: STUN URLs and TURN REST API credentials (coturn's
// use-auth-secret), as a DeployNet extension frame that plain WebTorrent clients never see.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startServer, Client, announce, id20, signalBinary } from './harness.mjs'

const SECRET = 'lab-secret-0123456789'

test('a DeployNet client gets STUN and TURN with a credential coturn accepts', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dn-ice-'))
  const file = path.join(dir, 'secret')
  writeFileSync(file, SECRET + '\n')
  const s = await startServer(['--stun', 'stun:198.18.0.10:3478', '--turn',
    'turn:198.18.0.10:3478?transport=udp,turn:198.18.0.10:3478?transport=tcp',
    '--turn-secret-file', file, '--turn-ttl', '600'])
  try {
    const before = Math.floor(Date.now() / 1000)
    const c = await Client.open(s.url + '/?deploynet=1')
    const m = await c.next(x => x.action === 'deploynet')
    assert.deepEqual(m.ice_servers[0], { urls: ['stun:198.18.0.10:3478'] })
    const turn = m.ice_servers[1]
    assert.deepEqual(turn.urls, ['turn:198.18.0.10:3478?transport=udp',
      'turn:198.18.0.10:3478?transport=tcp'])
    const [expiry, tag] = turn.username.split(':')
    assert.match(tag, /^[0-9a-f]{16}$/, 'a username per connection')
    assert.ok(Number(expiry) >= before + 600 && Number(expiry) <= before + 602, turn.username)
    assert.equal(m.expires, Number(expiry))
    assert.equal(turn.credential, createHmac('sha1', SECRET).update(turn.username).digest('base64'))
    assert.equal(m.ice_transport_policy, 'all')
    assert.ok(!s.log().includes(SECRET), 'the secret never reaches the log')
    c.close()
    // Another connection in the same second: another username (coturn's quotas and logs are
    // per user), each with its own valid credential.
    const c2 = await Client.open(s.url + '/?deploynet=1')
    const turn2 = (await c2.next(x => x.action === 'deploynet')).ice_servers[1]
    assert.notEqual(turn2.username.split(':')[1], tag)
    assert.equal(turn2.credential, createHmac('sha1', SECRET).update(turn2.username).digest('base64'))
    c2.close()

    // A plain WebTorrent client (no `deploynet` on the URL) never sees the extension.
    const plain = await Client.open(s.url)
    const ih = id20()
    plain.send(announce(ih, id20()))
    await plain.next(x => x.action === 'announce')
    await plain.flush()
    assert.equal(plain.messages.filter(x => x.action === 'deploynet').length, 0)
    plain.close()
  } finally {
    await s.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('relay-only and the secret from the environment; no ICE configured: an empty list', async () => {
  const s = await startServer(['--turn', 'turns:turn.example:5349', '--relay-only'],
    { env: { DEPLOYNET_TURN_SECRET: SECRET } })
  try {
    const c = await Client.open(s.url + '/announce?x=1&deploynet')
    const m = await c.next(x => x.action === 'deploynet')
    assert.equal(m.ice_transport_policy, 'relay')
    assert.equal(m.ice_servers.length, 1)
    assert.equal(m.ice_servers[0].credential,
      createHmac('sha1', SECRET).update(m.ice_servers[0].username).digest('base64'))
    c.close()
  } finally {
    await s.stop()
  }
  const bare = await startServer()
  try {
    const c = await Client.open(bare.url + '/?deploynet=1')
    const m = await c.next(x => x.action === 'deploynet')
    assert.deepEqual(m.ice_servers, [])
    c.close()
  } finally {
    await bare.stop()
  }
})

test('bad ICE settings stop the server at start, naming the flag', () => {
  const run = (args, env = {}) => spawnSync(signalBinary, ['--listen', '127.0.0.1:0', ...args],
    { encoding: 'utf8', env: { ...process.env, DEPLOYNET_TURN_SECRET: '', ...env } })
  let r = run(['--turn', 'turn:x:3478'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--turn: needs a shared secret/)
  r = run(['--stun', 'http://x'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--stun: expected stun:/)
  r = run(['--relay-only'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--relay-only: needs --turn/)
  r = run(['--turn', 'turn:x', '--turn-secret-file', '/nonexistent/secret'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--turn-secret-file: cannot read/)
})
