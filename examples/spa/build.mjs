// A real single-page app for the bench and tests: Swagger UI, as its npm package ships it
// (swagger-ui-dist: ~1.5 MB of JavaScript and CSS not written here), showing an OpenAPI
// document served beside it, with DeployNet added by `deploynet init`.
//
//   node examples/spa/build.mjs OUT ORIGIN SIGNAL_URL [--plain]
// --plain: the same site without DeployNet (no init).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const [out, origin, signal] = process.argv.slice(2)
if (!out || !origin || !signal) {
  console.error('usage: node examples/spa/build.mjs OUT ORIGIN SIGNAL_URL [--plain]')
  process.exit(2)
}
const dist = path.join(root, 'node_modules/swagger-ui-dist')
fs.mkdirSync(out, { recursive: true })
for (const f of ['index.html', 'index.css', 'swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js',
  'favicon-16x16.png', 'favicon-32x32.png']) {
  fs.copyFileSync(path.join(dist, f), path.join(out, f))
}
// The app loads its document from this origin (the package's default points at a public demo).
fs.writeFileSync(path.join(out, 'swagger-initializer.js'),
  fs.readFileSync(path.join(dist, 'swagger-initializer.js'), 'utf8').replace('https://petstore.swagger.io/v2/swagger.json', '/openapi.json'))

// An OpenAPI document of a plausible size: a catalogue API with 60 operations.
const paths = {}
for (const res of ['products', 'orders', 'customers', 'invoices', 'shipments', 'reviews', 'coupons', 'warehouses', 'suppliers', 'returns']) {
  const schema = { $ref: `#/components/schemas/${res}` }
  paths[`/${res}`] = {
    get: { tags: [res], summary: `List ${res}`, parameters: [{ name: 'page', in: 'query', schema: { type: 'integer' } }], responses: { 200: { description: 'A page', content: { 'application/json': { schema: { type: 'array', items: schema } } } } } },
    post: { tags: [res], summary: `Create one of ${res}`, requestBody: { content: { 'application/json': { schema } } }, responses: { 201: { description: 'Created' } } },
  }
  paths[`/${res}/{id}`] = {
    get: { tags: [res], summary: `One of ${res}`, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'Found', content: { 'application/json': { schema } } }, 404: { description: 'Not found' } } },
    put: { tags: [res], summary: `Replace one of ${res}`, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'Replaced' } } },
    patch: { tags: [res], summary: `Change one of ${res}`, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'Changed' } } },
    delete: { tags: [res], summary: `Delete one of ${res}`, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 204: { description: 'Deleted' } } },
  }
}
const schemas = {}
for (const res of Object.values(paths).flatMap((p) => Object.values(p)).flatMap((op) => op.tags)) {
  schemas[res] = { type: 'object', properties: Object.fromEntries(['id', 'name', 'created', 'updated', 'owner', 'status', 'notes'].map((k) => [k, { type: 'string' }])) }
}
fs.writeFileSync(path.join(out, 'openapi.json'), JSON.stringify({
  openapi: '3.0.3', info: { title: 'Northwind Catalogue API', version: '1.0.0' }, paths, components: { schemas },
}, null, 1))

if (!process.argv.includes('--plain')) {
  const cli = process.env.DEPLOYNET_CLI ?? path.join(root, 'build/release/cli/deploynet')
  execFileSync(cli, ['init', out, '--origin', origin, '--signal', signal, '--client-dir', path.join(root, 'build/client')], { stdio: 'pipe' })
}
