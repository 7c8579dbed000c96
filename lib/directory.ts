// The user directory of the gateway: who a user is and which groups they belong to. Read from a JSON file
// (USERS_FILE, default config/users.json: the example users ironman and hulk in "avengers", piggy, kermit,
// gonzo and fozzy in "muppetshow"); with JWT authentication the token's claims may carry the groups instead.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const defaultFile = resolve(dirname(fileURLToPath(import.meta.url)), "..", "config", "users.json");
import type { User } from "../domain/types.ts";
import { readEnvironment } from "./env.ts";

export interface DirectoryUser extends User {
  id: string;
  displayName?: string;
}

export class Directory {
  private readonly byId = new Map<string, DirectoryUser>();
  private readonly byName = new Map<string, DirectoryUser>();

  readonly users: DirectoryUser[];

  constructor(users: DirectoryUser[]) {
    this.users = users;
    for (const user of users) {
      this.byId.set(user.id, user);
      this.byName.set(user.username, user);
    }
  }

  /** `file`, else USERS_FILE (lib/env.ts), else config/users.json. */
  static load(file: string = readEnvironment().usersFile ?? defaultFile): Directory {
    const raw = JSON.parse(readFileSync(resolve(file), "utf8")) as unknown;
    if (!Array.isArray(raw)) throw new Error(`${file}: expected a JSON array of users`);
    const users = raw.map((entry, i) => {
      const { id, username, groups, displayName } = entry as Partial<DirectoryUser>;
      if (typeof username !== "string" || username === "") throw new Error(`${file}[${i}]: "username" is missing`);
      if (groups !== undefined && (!Array.isArray(groups) || groups.some((g) => typeof g !== "string"))) {
        throw new Error(`${file}[${i}]: "groups" must be a list of names`);
      }
      return { id: typeof id === "string" && id ? id : username, username, groups: groups ?? [], ...(displayName ? { displayName } : {}) };
    });
    return new Directory(users);
  }

  /** By id (the X-Current-User-ID of Polyflow's example) or by user name. */
  find(idOrName: string): DirectoryUser | undefined {
    return this.byId.get(idOrName) ?? this.byName.get(idOrName);
  }
}
