// Builds the demo site into OUT: three HTML pages from page.html, the CSS and app script as
// written, and generated content: photos (real PNGs), a vendor bundle (a catalogue in JS) and
// web fonts (DejaVu, from Debian's fonts-dejavu-core). Nothing is downloaded.
//   node examples/demo-site/generate.mjs OUT SIGNAL_URL [BUDGET_MS]
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

const here = path.dirname(new URL(import.meta.url).pathname)
const [out, signal, budget = '1500'] = process.argv.slice(2)
if (!out || !signal) {
  console.error('usage: generate.mjs OUT SIGNAL_URL [BUDGET_MS]')
  process.exit(2)
}
fs.mkdirSync(path.join(out, 'img'), { recursive: true })
fs.mkdirSync(path.join(out, 'css'), { recursive: true })
fs.mkdirSync(path.join(out, 'js'), { recursive: true })
fs.mkdirSync(path.join(out, 'fonts'), { recursive: true })

// Deterministic pseudo-random numbers, so every build of the demo is byte-identical.
let seed = 20261125
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32)

// ---- PNG photos: landscapes of gradients, hills and noise (compress like real photos) ----
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
const crc32 = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0 }
function chunk (type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length)
  const td = Buffer.concat([Buffer.from(type), data])
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td))
  return Buffer.concat([len, td, crc])
}
function photo (w, h, hue) {
  const raw = Buffer.alloc((w * 3 + 1) * h)
  const ridge = Array.from({ length: w }, (_, x) => 0.55 + 0.12 * Math.sin(x / (40 + hue % 30)) + 0.05 * Math.sin(x / 7))
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0
    for (let x = 0; x < w; x++) {
      const sky = y / h < ridge[x]
      const n = (rnd() - 0.5) * 40
      const t = y / h
      const r = sky ? 120 + 100 * t + n : 40 + (hue % 60) + 60 * t + n
      const g = sky ? 160 + 60 * t + n : 90 + (hue % 80) * 0.6 + 40 * t + n
      const b = sky ? 220 - 40 * t + n : 50 + 30 * t + n
      const o = y * (w * 3 + 1) + 1 + x * 3
      raw[o] = Math.max(0, Math.min(255, r)); raw[o + 1] = Math.max(0, Math.min(255, g)); raw[o + 2] = Math.max(0, Math.min(255, b))
    }
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 6 })), chunk('IEND', Buffer.alloc(0))])
}
const captions = ['Ridge trail at dawn', 'Larch valley', 'Camp above the lake', 'Scree crossing', 'Old growth',
  'Windbreak hut', 'The long descent', 'Evening on the col']
const images = []
for (let i = 0; i < captions.length; i++) {
  const file = `img/photo-${i + 1}.png`
  fs.writeFileSync(path.join(out, file), photo(480, 300, i * 37))
  images.push(`    <figure><img src="/${file}" width="480" height="300" alt="${captions[i]}"><figcaption>${captions[i]}</figcaption></figure>`)
}

// ---- vendor bundle: a catalogue, as a JS build of a real shop would ship data and code ----
const cats = ['Tents', 'Packs', 'Sleeping', 'Cooking', 'Clothing', 'Footwear', 'Navigation', 'Lighting']
const words = ['Alpine', 'Summit', 'Trail', 'Ridge', 'Canyon', 'Glacier', 'Forest', 'Meadow', 'Storm', 'Ember']
const catalog = Array.from({ length: 3000 }, (_, i) => ({
  id: i + 1, name: `${words[i % 10]} ${words[(i * 7) % 10]} ${cats[i % 8].slice(0, -1)} ${i + 1}`,
  category: cats[i % 8], grams: Math.round(100 + rnd() * 3000), price: Math.round(1000 + rnd() * 40000) / 100,
  description: Array.from({ length: 12 }, () => words[Math.floor(rnd() * 10)].toLowerCase()).join(' '),
}))
fs.writeFileSync(path.join(out, 'js/vendor.js'),
  `/* Northwind catalogue bundle (generated) */\nwindow.NORTHWIND_CATALOG = ${JSON.stringify(catalog)};\n`)
fs.copyFileSync(path.join(here, 'js/app.js'), path.join(out, 'js/app.js'))
fs.copyFileSync(path.join(here, 'css/site.css'), path.join(out, 'css/site.css'))

// ---- fonts ----
for (const f of ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSerif.ttf']) {
  fs.copyFileSync(path.join('/usr/share/fonts/truetype/dejavu', f), path.join(out, 'fonts', f))
}

// ---- pages ----
const template = fs.readFileSync(path.join(here, 'page.html'), 'utf8')
const clientDir = process.env.DEPLOYNET_CLIENT_DIR ?? path.join(here, '../../build/client')
const boot = fs.readFileSync(path.join(clientDir, 'deploynet-boot.js'), 'utf8').trim()
const pages = [
  ['index.html', 'Gear for the long way round', 'Tested on ridges, valleys and everything between.', images.slice(0, 6)],
  ['gallery.html', 'From the field', 'Photos our customers sent back from the trail.', images.slice(2, 8)],
  ['about.html', 'About Northwind', 'A small workshop making gear that lasts.', images.slice(5, 8)],
]
for (const [file, title, lede, imgs] of pages) {
  const html = template.replaceAll('{{title}}', title).replaceAll('{{lede}}', lede)
    .replaceAll('{{images}}', imgs.join('\n')).replaceAll('{{signal}}', signal).replaceAll('{{budget}}', budget).replaceAll('{{boot}}', () => boot)
  fs.writeFileSync(path.join(out, file), html)
}
