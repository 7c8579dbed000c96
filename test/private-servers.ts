// A private PostgreSQL cluster and NATS server for fault tests and the fail-over benchmark: they are killed and
// restarted on purpose, so they must not be the shared servers of scripts/services.sh (everybody's tests use
// those). Each lives in a temp directory under /tmp, on a free port, and is removed afterwards.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createConnection } from "node:net";
import { freePort } from "./helpers.ts";

const run = promisify(execFile);

/** PostgreSQL's server binaries (Debian keeps them per major version). */
function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "pg_ctl"))) : [];
  if (versions.length === 0) throw new Error("No PostgreSQL server binaries under /usr/lib/postgresql (bash scripts/services.sh up installs them)");
  return join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, "bin");
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user. */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port }, () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface PrivatePostgres {
  url: string;
  port: number;
  start(): Promise<void>;
  /** "immediate" is a crash (recovery on the next start, "the database system is starting up" meanwhile). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  destroy(): Promise<void>;
}

export async function privatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), "taskpool-pg-"));
  if (process.getuid?.() === 0) {
    chownSync(dir, Number((await run("id", ["-u", "postgres"])).stdout.trim()), Number((await run("id", ["-g", "postgres"])).stdout.trim()));
  }
  const data = join(dir, "data");
  const port = await freePort();
  const [initdb, initArgs] = asPostgres(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "taskpool", "--no-sync", "-E", "UTF8"]);
  await run(initdb, initArgs);
  // fsync=off loses nothing when PostgreSQL crashes (only when the machine does); synchronous_commit stays on: off,
  // a crash loses commits already acknowledged, which is exactly what the fault suite checks does not happen.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
  let running = false;
  const pg: PrivatePostgres = {
    url: `postgres://taskpool@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      const [ctl, args] = asPostgres(join(bin, "pg_ctl"), ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "-t", "60", "start"]);
      await run(ctl, args);
      running = true;
    },
    async stop(mode = "fast") {
      if (!running) return;
      const [ctl, args] = asPostgres(join(bin, "pg_ctl"), ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
      await run(ctl, args);
      running = false;
    },
    async destroy() {
      await pg.stop("immediate").catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

export interface PrivateNats {
  url: string;
  start(): Promise<void>;
  kill(): Promise<void>;
}

export async function privateNats(): Promise<PrivateNats> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const nats: PrivateNats = {
    url: `nats://127.0.0.1:${port}`,
    async start() {
      child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      await waitForPort(port, 15_000);
    },
    async kill() {
      const running = child;
      child = null;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.on("exit", resolve));
      running.kill("SIGKILL");
      await exited;
    },
  };
  await nats.start();
  return nats;
}
