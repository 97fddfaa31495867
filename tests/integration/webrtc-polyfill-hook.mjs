// Module-resolution hook for the interop test: `bittorrent-tracker`'s simple-peer imports
// `webrtc-polyfill`, whose native backend (node-datachannel) downloads a binary at install
// time, which this project does not allow. The same WebRTC API comes from @roamhq/wrtc,
// whose binary ships inside its package.
export async function resolve (specifier, context, next) {
  if (specifier === 'webrtc-polyfill') {
    return { url: new URL('./webrtc-polyfill-shim.mjs', import.meta.url).href, shortCircuit: true }
  }
  return next(specifier, context)
}
