// Tracking tokens of the global log. A token is "<transaction id>:<global position>" of the last event a
// consumer has seen; consumers read strictly after it in (transaction id, global position) order, which is
// the order in which events become safely visible (see stores/event-store.ts). Positions alone are not an
// order of visibility, so a token, never a bare position, is what a consumer stores.

export interface Token {
  transactionId: bigint;
  globalPosition: bigint;
}

export const START_TOKEN = "0:0";

export function parseToken(token: string): Token {
  const match = /^(\d{1,20}):(\d{1,20})$/.exec(token);
  if (!match) throw new TypeError(`Not a tracking token: "${token}" (expected "<transactionId>:<globalPosition>")`);
  return { transactionId: BigInt(match[1]!), globalPosition: BigInt(match[2]!) };
}

export function formatToken(transactionId: string | number | bigint, globalPosition: string | number | bigint): string {
  return `${BigInt(transactionId)}:${BigInt(globalPosition)}`;
}

export function compareTokens(a: string, b: string): number {
  const x = parseToken(a);
  const y = parseToken(b);
  if (x.transactionId !== y.transactionId) return x.transactionId < y.transactionId ? -1 : 1;
  if (x.globalPosition !== y.globalPosition) return x.globalPosition < y.globalPosition ? -1 : 1;
  return 0;
}

export const TOKEN_PATTERN = /^\d{1,20}:\d{1,20}$/;
