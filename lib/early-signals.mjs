// Loaded first (`node --import ./lib/early-signals.mjs --import tsx server.ts`): the node's SIGINT/SIGTERM
// handlers are in place before Node has loaded any TypeScript, so a Ctrl-C during start-up is never the default
// "kill at once". A signal that comes before server.ts takes over (`dispatch`) is kept and handed to it then.
// Plain JavaScript, so that it needs no loader.
const signals = { pending: null, dispatch: null };
globalThis.taskpoolSignals = signals;
for (const name of ["SIGINT", "SIGTERM"]) {
  process.on(name, () => {
    if (signals.dispatch) signals.dispatch(name);
    else if (signals.pending) process.exit(130);
    else signals.pending = name;
  });
}
