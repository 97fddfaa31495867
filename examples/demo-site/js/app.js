// The demo site's own script: fills the catalogue from vendor.js, and draws DeployNet's live
// statistics (bytes from peers vs the origin, per asset, peers connected).
(function () {
  const rows = (window.NORTHWIND_CATALOG || []).slice(0, 40)
  const tbody = document.querySelector('#catalog tbody')
  for (const r of rows) {
    const tr = document.createElement('tr')
    tr.innerHTML = `<td>${r.name}</td><td>${r.category}</td><td>${r.grams} g</td><td>$${r.price.toFixed(2)}</td>`
    tbody.appendChild(tr)
  }

  const kb = (n) => (n / 1024).toFixed(0) + ' KiB'
  const summary = document.getElementById('p2p-summary')
  const list = document.getElementById('p2p-assets')
  function draw (dn) {
    const s = dn.stats()
    const total = s.bytesFromPeers + s.bytesFromOrigin
    const share = total ? Math.round(100 * s.bytesFromPeers / total) : 0
    summary.textContent = `${s.peers} peer(s) connected · ${kb(s.bytesFromPeers)} from peers, ` +
      `${kb(s.bytesFromOrigin)} from the origin (${share}% peers) · ${kb(s.bytesUploaded)} served to others`
    list.innerHTML = s.assets.map((a) =>
      `<tr><td>${a.path}</td><td>${kb(a.fromPeers)}</td><td>${kb(a.fromOrigin)}</td><td>${kb(a.fromCache)}</td></tr>`).join('')
  }
  if (!window.deploynet) { summary.textContent = 'DeployNet is not running: everything came over HTTP.'; return }
  window.deploynet.then((dn) => {
    if (!dn) return
    draw(dn)
    dn.on('asset', () => draw(dn))
    dn.on('peer', () => draw(dn))
    dn.on('peerclose', () => draw(dn))
    setInterval(() => draw(dn), 1000)
  })
})()
