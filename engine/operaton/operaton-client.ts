// A small REST client for Operaton / Camunda 7 (`…/engine-rest`) over Node's fetch: base URL, optional basic
// auth, a timeout per call, retries for reads only, and the engine's error answers mapped to EngineError kinds
// on their `type` (the engine answers a claim race with HTTP 500 and type TaskAlreadyClaimedException, not 409).
// Dates travel as `yyyy-MM-ddTHH:mm:ss.SSS+0000` (domain/engine/variables.ts has the codec).
import { EngineError, type EngineErrorKind } from "../connector/engine-adapter.ts";
import { sleep } from "../../lib/sleep.ts";

export interface OperatonClientOptions {
  /** e.g. http://127.0.0.1:8180/engine-rest (or …/engine-rest/engine/<name>). */
  baseUrl: string;
  username?: string | null;
  password?: string | null;
  /** Per request, ms. */
  timeoutMs?: number;
  /** Extra attempts for reads that failed for a transient reason. */
  readRetries?: number;
}

export type Query = Record<string, string | number | boolean | null | undefined | readonly string[]>;

interface EngineErrorBody {
  type?: string;
  message?: string;
  code?: number | null;
}

const CONFLICT_TYPES = new Set(["TaskAlreadyClaimedException"]);
const RETRY_TYPES = new Set(["OptimisticLockingException", "CrdbTransactionRetryException"]);
const GONE_TYPES = new Set(["NotFoundException", "NullValueException"]);
const INVALID_TYPES = new Set(["InvalidRequestException", "ParseException", "BadUserRequestException", "NotValidException", "FormFieldValidationException", "ProcessEngineException_Invalid"]);

/** The kind of an engine error answer: by the engine's exception type first, the HTTP status second. */
export function errorKindOf(status: number, body: EngineErrorBody | null): EngineErrorKind {
  const type = body?.type ?? "";
  const message = body?.message ?? "";
  if (CONFLICT_TYPES.has(type)) return "conflict";
  if (RETRY_TYPES.has(type)) return "retry";
  // A write on a task that no longer exists answers 500 with "… task is null" or 404 "No matching task".
  if (status === 404 || GONE_TYPES.has(type) || /task is null|No matching task|Cannot find task/i.test(message)) return "gone";
  if (status === 400 || INVALID_TYPES.has(type)) return "invalid";
  if (status === 502 || status === 503 || status === 504) return "unavailable";
  return "failed";
}

function isTransient(err: unknown): boolean {
  return err instanceof EngineError && (err.kind === "unavailable" || err.kind === "retry");
}

export class OperatonClient {
  readonly baseUrl: string;
  private readonly authorization: string | null;
  private readonly timeoutMs: number;
  private readonly readRetries: number;

  constructor(options: OperatonClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.authorization = options.username ? `Basic ${Buffer.from(`${options.username}:${options.password ?? ""}`).toString("base64")}` : null;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.readRetries = options.readRetries ?? 2;
  }

  url(path: string, query?: Query): string {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      // URLSearchParams encodes `+` as %2B, as the engine's date parameters need.
      url.searchParams.set(key, Array.isArray(value) ? value.join(",") : String(value));
    }
    return url.toString();
  }

  async get<T>(path: string, query?: Query): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.request("GET", path, query)) as T;
      } catch (err) {
        if (attempt >= this.readRetries || !isTransient(err)) throw err;
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  /** POST; `read: true` marks a query sent as POST (retried like a GET). */
  async post<T>(path: string, body?: unknown, query?: Query, options: { read?: boolean } = {}): Promise<T> {
    if (!options.read) return (await this.request("POST", path, query, body)) as T;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.request("POST", path, query, body)) as T;
      } catch (err) {
        if (attempt >= this.readRetries || !isTransient(err)) throw err;
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request("PUT", path, undefined, body) as Promise<T>;
  }

  delete<T>(path: string): Promise<T> {
    return this.request("DELETE", path) as Promise<T>;
  }

  /** multipart/form-data POST (deployments). */
  async postForm<T>(path: string, form: FormData): Promise<T> {
    return (await this.request("POST", path, undefined, form)) as T;
  }

  private async request(method: string, path: string, query?: Query, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.authorization) headers.authorization = this.authorization;
    let payload: BodyInit | undefined;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const url = this.url(path, query);
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const reason = (err as Error).name === "TimeoutError" ? `timed out after ${this.timeoutMs} ms` : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
      throw new EngineError("unavailable", `${method} ${path}: engine not reachable (${reason})`, { reason: `the engine is not reachable (${reason})` });
    }
    const text = await response.text();
    if (!response.ok) {
      let parsed: EngineErrorBody | null;
      try {
        parsed = JSON.parse(text) as EngineErrorBody;
      } catch {
        parsed = null;
      }
      const kind = errorKindOf(response.status, parsed);
      const message = parsed?.message ?? (text.slice(0, 500) || response.statusText);
      throw new EngineError(kind, `${method} ${path}: ${response.status} ${parsed?.type ?? ""} ${message}`.replace(/\s+/g, " ").trim(), {
        status: response.status,
        engineType: parsed?.type ?? null,
        reason: message,
      });
    }
    if (text === "") return null;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
}
