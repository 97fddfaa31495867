// Builds the media site into OUT, with no network: a video page (a VP9 WebM from ffmpeg's test
// source at a realistic bitrate), a downloads page (a large file) and a gallery of lazy-loaded
// photos (JPEGs from ffmpeg). Each page carries DeployNet's tag (the lab bench strips it for
// the plain copy); the site's files are made once per size and kept in build/media-cache.
//   node examples/media/generate.mjs OUT SIGNAL_URL [--video-s 100] [--kbps 4000] [--download-mb 100] [--photos 24]
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const args = process.argv.slice(2)
const [out, signal] = args
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : dflt
}
if (!out || !signal) {
  console.error('usage: generate.mjs OUT SIGNAL_URL [--video-s 100] [--kbps 4000] [--download-mb 100] [--photos 24]')
  process.exit(2)
}
const videoS = opt('video-s', 100)
const kbps = opt('kbps', 4000)
const downloadMb = opt('download-mb', 100)
const photos = opt('photos', 24)

const cache = path.join(root, 'build/media-cache')
fs.mkdirSync(cache, { recursive: true })
const ffmpeg = (...a) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...a], { stdio: 'inherit' })

// 720p VP9 at `kbps` (constrained: a streaming site's ladder rung), a keyframe every 2 s.
const video = path.join(cache, `video-${videoS}s-${kbps}k.webm`)
if (!fs.existsSync(video)) {
  ffmpeg('-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=25`, '-t', String(videoS), '-c:v', 'libvpx-vp9',
    '-b:v', `${kbps}k`, '-minrate', `${kbps}k`, '-maxrate', `${kbps}k`, '-deadline', 'realtime', '-cpu-used', '8',
    '-row-mt', '1', '-g', '50', `${video}.part.webm`)
  fs.renameSync(`${video}.part.webm`, video)
}
// Incompressible bytes, the same on every build (a seeded hash chain).
const download = path.join(cache, `download-${downloadMb}mb.bin`)
if (!fs.existsSync(download)) {
  const fd = fs.openSync(`${download}.part`, 'w')
  let block = createHash('sha256').update('deploynet media').digest()
  const buf = Buffer.alloc(1024 * 1024)
  for (let mb = 0; mb < downloadMb; mb++) {
    for (let o = 0; o < buf.length; o += 64) {
      block = createHash('sha512').update(block).digest()
      block.copy(buf, o)
    }
    fs.writeSync(fd, buf)
  }
  fs.closeSync(fd)
  fs.renameSync(`${download}.part`, download)
}
const gallery = path.join(cache, `photos-${photos}`)
if (!fs.existsSync(gallery)) {
  fs.mkdirSync(`${gallery}.part`, { recursive: true })
  // One frame a second of a noisy test source at 2560x1440: about 1 MB per JPEG, like a photo.
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=2560x1440:rate=1', '-f', 'lavfi', '-i', 'anoisesrc', '-filter_complex',
    '[0:v]noise=alls=30:allf=t[v]', '-map', '[v]', '-frames:v', String(photos), '-q:v', '3', path.join(`${gallery}.part`, 'photo-%02d.jpg'))
  fs.renameSync(`${gallery}.part`, gallery)
}

fs.mkdirSync(path.join(out, 'media'), { recursive: true })
fs.mkdirSync(path.join(out, 'photos'), { recursive: true })
fs.copyFileSync(video, path.join(out, 'media/video.webm'))
fs.copyFileSync(download, path.join(out, 'media/download.bin'))
for (const f of fs.readdirSync(gallery)) fs.copyFileSync(path.join(gallery, f), path.join(out, 'photos', f))

// The tag, as `deploynet init` writes it for a media site: the first view reloads once under the
// worker (data-first-visit="reload"), so that even a first view's video can come from peers.
const tag = `<!-- DeployNet: one script tag. -->
<script src="/deploynet.js" data-deploynet data-signal="${signal}" data-ring-wasm="/deploynet_ring.wasm" data-first-visit="reload" async></script>
`
// What the bench reads: when the first frame was shown, and every stall after playback began.
const marks = `<script>
window.mediaMarks = { firstFrame: null, stalls: 0, stalledMs: 0 };
addEventListener('DOMContentLoaded', function () {
  var v = document.querySelector('video'); if (!v) return;
  var since = 0;
  v.requestVideoFrameCallback(function () { window.mediaMarks.firstFrame = performance.now(); });
  v.addEventListener('waiting', function () { if (window.mediaMarks.firstFrame !== null) { window.mediaMarks.stalls++; since = performance.now(); } });
  v.addEventListener('playing', function () { if (since) { window.mediaMarks.stalledMs += performance.now() - since; since = 0; } });
});
</script>
`
const page = (title, body) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
${tag}<title>${title} · Northwind Media</title>
${marks}<style>body{font:16px sans-serif;margin:2rem}img{width:48%;height:auto;margin:1%}</style>
</head>
<body>
<nav><a href="/video.html">Video</a> · <a href="/downloads.html">Downloads</a> · <a href="/gallery.html">Gallery</a></nav>
${body}
</body>
</html>
`
fs.writeFileSync(path.join(out, 'video.html'), page('Video', '<h1>Trail film</h1>\n<video src="/media/video.webm" autoplay muted playsinline controls width="960"></video>'))
fs.writeFileSync(path.join(out, 'downloads.html'), page('Downloads',
  `<h1>Downloads</h1>\n<p><a href="/media/download.bin" download>Trail maps (${downloadMb} MB)</a></p>`))
fs.writeFileSync(path.join(out, 'gallery.html'), page('Gallery', '<h1>Gallery</h1>\n' +
  fs.readdirSync(gallery).sort().map((f) => `<img src="/photos/${f}" loading="lazy" width="1280" height="720" alt="">`).join('\n')))
