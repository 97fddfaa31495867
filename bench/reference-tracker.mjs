// The anchor of `make bench`: the `bittorrent-tracker` npm server (WebSocket only), on a free
// loopback port, printed on stdout as `port=N`.
import Server from 'bittorrent-tracker/server'

const server = new Server({ udp: false, http: false, ws: true, stats: false, trustProxy: false })
server.on('error', err => { console.error('reference tracker error:', err.message); process.exit(1) })
server.on('warning', () => {})
server.on('listening', () => {
  console.log(`port=${server.ws.address().port}`)
})
server.listen(0, '127.0.0.1')
process.on('SIGTERM', () => server.close(() => process.exit(0)))
