// DeployNet browser client. `DeployNet.start({ signal: 'wss://…' })` joins the site's swarm;
// `fetchPath('/app.js')` returns verified bytes from peers, or from the origin when peers
// cannot deliver in time.
export { DeployNet, swarmIdFor, type DeployNetOptions, type FetchOptions, type Stats, type AssetStats } from './engine';
export { encode, decode, WireError, type WireMessage } from './wire';
