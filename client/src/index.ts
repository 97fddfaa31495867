// DeployNet browser client. `DeployNet.start({ signal: 'wss://…' })` joins the site's swarm;
// `fetchPath('/app.js')` returns verified bytes from peers, or from the origin when peers
// cannot deliver in time. The public API: the engine, its options and its figures.
export { DeployNet, swarmIdFor, type DeployNetOptions, type FetchOptions, type Stats } from './engine';
export type { AssetStats, RangeReader } from './transfers';
export { DeployNetError, type ErrorCode } from './errors';
export { attachServiceWorker } from './page';
