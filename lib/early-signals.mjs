// Loaded first (`node --import ./lib/early-signals.mjs --import ./lib/compile-cache.mjs server.ts`): the node's
// SIGINT/SIGTERM handlers are in place before Node has loaded any TypeScript, so a Ctrl-C during start-up is never
// the default "kill at once". A signal that comes before server.ts takes over (`dispatch`) is kept and handed to it
// then.
// Plain JavaScript, so that it needs no loader.
const signals = { pending: null, pendingAt: 0, dispatch: null };
globalThis.taskpoolSignals = signals;
for (const name of ["SIGINT", "SIGTERM"]) {
  process.on(name, () => {
    if (signals.dispatch) signals.dispatch(name);
    // (A second signal within 500 ms is the same Ctrl-C, forwarded by npm: see server.ts.)
    else if (signals.pending && Date.now() - signals.pendingAt >= 500) process.exit(130);
    else if (!signals.pending) {
      signals.pending = name;
      signals.pendingAt = Date.now();
    }
  });
}
