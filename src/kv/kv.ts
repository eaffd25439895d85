/**
 * The built-in replicated key-value state machine: put / get / cas on string keys and values.
 * Commands carry (clientId, seq), the request id that matches a completion to its caller and
 * lets the state machine recognise a command it has already executed.
 */
export type KvCommand =
  | { readonly c: number; readonly s: number; readonly op: 'put'; readonly k: string; readonly v: string }
  | { readonly c: number; readonly s: number; readonly op: 'get'; readonly k: string }
  | { readonly c: number; readonly s: number; readonly op: 'cas'; readonly k: string; readonly e: string | null; readonly v: string };

export type KvResult = 'ok' | string | null | boolean;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(bytes)) as KvCommand;
}

export function requestKey(clientId: number, seq: number): string {
  return `${clientId}:${seq}`;
}

export class KvStateMachine {
  private readonly data = new Map<string, string>();
  /** Request ids executed so far, with their results (exactly-once for retried commands). */
  private readonly done = new Map<string, KvResult>();

  /** Executes a command; `duplicate` is true when its request id already ran. */
  execute(cmd: KvCommand): { result: KvResult; duplicate: boolean } {
    const key = requestKey(cmd.c, cmd.s);
    const prior = this.done.get(key);
    if (prior !== undefined) return { result: prior, duplicate: true };
    let result: KvResult;
    if (cmd.op === 'put') {
      this.data.set(cmd.k, cmd.v);
      result = 'ok';
    } else if (cmd.op === 'get') {
      result = this.data.get(cmd.k) ?? null;
    } else {
      const current = this.data.get(cmd.k) ?? null;
      result = current === cmd.e;
      if (result) this.data.set(cmd.k, cmd.v);
    }
    this.done.set(key, result);
    return { result, duplicate: false };
  }

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /** A deterministic digest of the data, for comparing replicas. */
  digest(): string {
    return JSON.stringify([...this.data.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }
}
