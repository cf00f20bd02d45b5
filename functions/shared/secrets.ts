/**
 * RPC credentials from Secrets Manager through Powertools Parameters, cached
 * for at most `maxAgeSeconds` (not for the life of the container), and
 * clients rebuilt when a re-read finds that the secret was rotated.
 *
 * Powertools Parameters: "You can adjust how long values should be kept in
 * cache by using the `maxAge` parameter" (seconds, default 5); an expired
 * value is fetched again on the next get().
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { RpcTarget } from './config.ts';

export interface RpcAuth {
  user: string;
  password: string;
}

/** Reads `{ "user", "password" }` secrets (or takes the plain credentials of a local target). */
export class RpcCredentials {
  #provider: SecretsProvider | undefined;

  constructor(
    private readonly client: () => SecretsManagerClient,
    readonly maxAgeSeconds: number,
  ) {}

  async get(target: RpcTarget): Promise<RpcAuth> {
    if (target.user !== undefined && target.password !== undefined) return { user: target.user, password: target.password };
    if (!target.secretArn) throw new Error(`invalid configuration: no RPC credentials for ${target.url}`);
    this.#provider ??= new SecretsProvider({ awsSdkV3Client: this.client() });
    const value = await this.#provider.get<{ user?: string; password?: string }>(target.secretArn, {
      maxAge: this.maxAgeSeconds,
      transform: 'json',
    });
    if (!value?.user || !value.password) throw new Error(`secret ${target.secretArn} lacks user/password`);
    return { user: value.user, password: value.password };
  }
}

export const sameAuth = (a: RpcAuth, b: RpcAuth): boolean => a.user === b.user && a.password === b.password;

/**
 * A client built from credentials: every get() reads the credentials (a cache
 * hit until they are older than the max age) and, when they changed, builds a
 * new client and closes the old one. A failed build is retried on the next get().
 */
export function rebuiltOnRotation<T>(
  auth: () => Promise<RpcAuth>,
  build: (auth: RpcAuth) => Promise<T>,
  close: (client: T) => Promise<void>,
): { get(): Promise<T>; close(): Promise<void> } {
  let current: { auth: RpcAuth; client: Promise<T> } | undefined;
  return {
    async get() {
      const a = await auth();
      if (current && sameAuth(current.auth, a)) return current.client;
      const old = current;
      const client = build(a);
      const entry = { auth: a, client };
      current = entry;
      client.catch(() => {
        if (current === entry) current = undefined;
      });
      if (old) void old.client.then(close, () => undefined).catch(() => undefined);
      return client;
    },
    async close() {
      const c = current;
      current = undefined;
      if (c) await c.client.then(close, () => undefined);
    },
  };
}
