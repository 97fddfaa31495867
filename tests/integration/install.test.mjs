// `make install` (its file-copying half, from the test build): what it lays out, and a systemd
// unit that systemd itself accepts, sandboxing options included, pointing at the installed binary.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { signalBinary } from './harness.mjs'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')

test('make install lays out binaries, client, unit and nginx configuration; systemd accepts the unit', () => {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'dn-install-'))
  try {
    execFileSync('make', ['-s', '-C', root, 'install-files', `DESTDIR=${dest}`, 'PREFIX=/opt/deploynet',
      `INSTALL_FROM=${path.dirname(path.dirname(signalBinary))}`], { stdio: 'pipe' })
    const p = (f) => path.join(dest, 'opt/deploynet', f)
    for (const f of ['bin/deploynet-signal', 'bin/deploynet']) assert.ok(fs.statSync(p(f)).mode & 0o111, f)
    for (const f of ['deploynet.js', 'deploynet.mjs', 'deploynet-sw.js', 'deploynet_ring.wasm']) {
      assert.ok(fs.statSync(p(`share/deploynet/client/${f}`)).size > 0, f)
    }
    assert.ok(fs.existsSync(p('share/deploynet/nginx/nginx-deploynet-signal.conf')))
    const unit = fs.readFileSync(p('lib/systemd/system/deploynet-signal.service'), 'utf8')
    assert.match(unit, /^ExecStart=\/opt\/deploynet\/bin\/deploynet-signal \$DEPLOYNET_SIGNAL_ARGS$/m)
    for (const opt of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'SystemCallFilter=@system-service']) {
      assert.ok(unit.includes(opt), opt)
    }
    // The installed binary answers --help; systemd-analyze checks the unit against it.
    assert.equal(spawnSync(p('bin/deploynet-signal'), ['--help']).status, 0)
    const staged = path.join(dest, 'deploynet-signal.service')
    fs.writeFileSync(staged, unit.replace('/opt/deploynet/bin/', p('bin/')))
    const v = spawnSync('systemd-analyze', ['verify', staged], { encoding: 'utf8' })
    assert.equal(v.status, 0, v.stderr)
  } finally {
    fs.rmSync(dest, { recursive: true, force: true })
  }
})
