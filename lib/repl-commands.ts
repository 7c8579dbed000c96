// Custom commands of the Moleculer REPL (`npm run repl`). Each one calls the platform's public actions, so it
// works the same on an embedded node and from a node that joined a cluster.
export const replCommands: unknown[] = [];
