// A small typed event emitter.
// biome-ignore lint/suspicious/noExplicitAny: one registry for handlers of every event's own arguments
type Handler = (...args: any[]) => void;

export class Emitter<Events extends Record<string, unknown[]>> {
  private handlers = new Map<keyof Events, Set<Handler>>();

  on<K extends keyof Events>(event: K, fn: (...args: Events[K]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    set.add(fn as Handler);
    return () => set.delete(fn as Handler);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    for (const fn of this.handlers.get(event) ?? []) {
      try {
        fn(...args);
      } catch (err) {
        console.error('deploynet: event handler failed', err);
      }
    }
  }
}
