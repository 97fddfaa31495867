// make package: the browser client as an npm package, in build/package/, packed by `npm pack`
// into build/deploynet-client-VERSION.tgz. Exports:
//   deploynet-client            ES module (DeployNet, swarmIdFor, attachServiceWorker) + types
//   deploynet-client/script     classic script for a <script> tag (global DeployNet, data-* config)
//   deploynet-client/sw         the service worker, served from the site's root (or base path)
//   deploynet-client/ring.wasm  the routing ring
// The API reference (API.md; with --docs also docs/client-api.md) is generated from the
// declarations.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const built = path.join(root, 'build/client')
const pkg = path.join(root, 'build/package')
const { version, license } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

fs.rmSync(pkg, { recursive: true, force: true })
fs.mkdirSync(path.join(pkg, 'dist'), { recursive: true })
for (const f of ['deploynet.mjs', 'deploynet.mjs.map', 'deploynet.js', 'deploynet.js.map', 'deploynet-sw.js', 'deploynet-sw.js.map', 'deploynet-boot.js', 'deploynet_ring.wasm']) {
  fs.copyFileSync(path.join(built, f), path.join(pkg, 'dist', f))
}
execFileSync(path.join(root, 'node_modules/.bin/tsc'), ['-p', path.join(root, 'client'), '--noEmit', 'false', '--declaration',
  '--emitDeclarationOnly', '--stripInternal', '--rootDir', path.join(root, 'client/src'), '--outDir', path.join(pkg, 'dist/types')], { stdio: 'inherit' })

fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({
  name: 'deploynet-client',
  version,
  description: 'DeployNet browser client: visitors serve a site\'s static assets to each other over WebRTC, every byte verified, the origin as the other source',
  license,
  type: 'module',
  types: './dist/types/index.d.ts',
  exports: {
    '.': { types: './dist/types/index.d.ts', import: './dist/deploynet.mjs' },
    './script': './dist/deploynet.js',
    './sw': './dist/deploynet-sw.js',
    './boot': './dist/deploynet-boot.js',
    './ring.wasm': './dist/deploynet_ring.wasm',
    './package.json': './package.json',
  },
  files: ['dist', 'API.md', 'README.md'],
  sideEffects: false,
}, null, 2) + '\n')

// One exported declaration with the doc comment right above it: from `export` to the `;` or
// `}` that closes it at brace depth 0. Private members are not API and are left out.
function declaration (src, name) {
  const m = new RegExp(`export (?:declare )?(?:class|interface|function|type|const) ${name}\\b`).exec(src)
  if (!m) return null
  let start = m.index
  const before = src.slice(0, start).trimEnd()
  if (before.endsWith('*/')) {
    const open = before.lastIndexOf('/**')
    if (open >= 0) start = open
  }
  let depth = 0
  let end = src.length
  for (let i = m.index; i < src.length; i++) {
    const c = src[i]
    if (c === '{' || c === '(') depth++
    else if (c === '}' || c === ')') {
      depth--
      if (depth === 0 && c === '}' && /^\s*(\n|$)/.test(src.slice(i + 1, i + 2))) { end = i + 1; break }
    } else if (c === ';' && depth === 0) { end = i + 1; break }
  }
  return src.slice(start, end)
    .replace(/[ \t]*\/\*\*(?:(?!\*\/)[\s\S])*\*\/\s*\n(?=\s*private )/g, '') // the doc comments of private members
    .split('\n').filter((l) => !/^\s*private /.test(l)).join('\n').trim()
}

// The API reference: every declaration the package exports, with its doc comments, in the
// order of index.d.ts (what a site may rely on; everything else is internal).
function reference () {
  const types = path.join(pkg, 'dist/types')
  const index = fs.readFileSync(path.join(types, 'index.d.ts'), 'utf8')
  let md = `# deploynet-client ${version}: API reference\n\nGenerated from the TypeScript declarations by \`make package\`; do not edit.\n` +
    'Import from `deploynet-client` (ES module); the classic script `deploynet-client/script` exposes the same as the global `DeployNet`.\n'
  for (const m of index.matchAll(/export (?:type )?\{([^}]*)\} from '\.\/(\w+)'/g)) {
    const names = m[1].split(',').map((s) => s.trim().replace(/^type /, '')).filter(Boolean)
    const src = fs.readFileSync(path.join(types, `${m[2]}.d.ts`), 'utf8')
    for (const name of names) {
      const body = declaration(src, name)
      if (!body) throw new Error(`API reference: no declaration of ${name} in ${m[2]}.d.ts`)
      md += `\n## ${name}\n\n\`\`\`ts\n${body}\n\`\`\`\n`
    }
  }
  return md
}
const api = reference()
fs.writeFileSync(path.join(pkg, 'API.md'), api)
if (process.argv.includes('--docs')) fs.writeFileSync(path.join(root, 'docs/client-api.md'), api)
fs.writeFileSync(path.join(pkg, 'README.md'), `# deploynet-client

The browser side of DeployNet, a decentralized CDN: visitors' browsers serve a site's static
assets to each other over WebRTC, every piece checked against the site's published manifest,
the origin's HTTP as the other source.

\`\`\`sh
npm install deploynet-client
\`\`\`

Serve \`node_modules/deploynet-client/dist/deploynet-sw.js\` at your site's root (or base path)
as \`/deploynet-sw.js\`, \`dist/deploynet_ring.wasm\` beside it, and either load
\`dist/deploynet.js\` with a tag:

\`\`\`html
<script src="/deploynet.js" data-signal="wss://signal.example" data-ring-wasm="/deploynet_ring.wasm" async></script>
\`\`\`

or start it from your own bundle:

\`\`\`js
import { DeployNet, attachServiceWorker } from 'deploynet-client'
const engine = DeployNet.start({ signal: ['wss://signal.example'], ringWasm: '/deploynet_ring.wasm' })
attachServiceWorker(engine, '/deploynet-sw.js', '/deploynet.json')
\`\`\`

Publish the manifest with every deploy (\`deploynet publish\` or \`deploynet init\`) and run
\`deploynet-signal\`. API: API.md.
`)
const out = execFileSync('npm', ['pack', '--pack-destination', path.join(root, 'build'), '--silent'], { cwd: pkg, encoding: 'utf8' }).trim()
console.log(`package: build/${out.split('\n').pop()}`)
