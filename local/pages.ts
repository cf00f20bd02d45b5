/**
 * A client of the API's paged list routes: follows `next` to the last page.
 * Used by `npm start`'s drain and summary and by tests that want a whole
 * listing (the API itself never answers more than one page).
 */

/** What the embedded cloud's `call` (or any client of the API) offers. */
export interface ApiClient {
  readonly api: string;
  call<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

/** Largest page the API gives (functions/shared/schemas.ts PAGE.max): fewest round trips. */
const PAGE_SIZE = 500;

/** Every item of a paged list route (`path` may carry its own query), page after page. */
export async function allPages<T>(client: ApiClient, path: string, key: string): Promise<T[]> {
  const items: T[] = [];
  const sep = path.includes('?') ? '&' : '?';
  let next: string | null = null;
  do {
    const url: string = `${path}${sep}limit=${PAGE_SIZE}${next === null ? '' : `&next=${encodeURIComponent(next)}`}`;
    const r = await client.call<Record<string, unknown> & { next?: string | null }>('GET', url);
    if (r.status !== 200) throw new Error(`GET ${url} at ${client.api} → ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    const page = r.body[key];
    if (!Array.isArray(page)) throw new Error(`GET ${url}: no ${key} list in the answer`);
    items.push(...(page as T[]));
    next = r.body.next ?? null;
  } while (next !== null);
  return items;
}

/** Every obligation of a domain (consumer side unless `query` says `side=provider`), oldest first. */
export function allObligations<T = { id: string; status: string }>(client: ApiClient, domain: string, query = ''): Promise<T[]> {
  return allPages<T>(client, `/domains/${encodeURIComponent(domain)}/obligations${query ? `?${query}` : ''}`, 'obligations');
}
