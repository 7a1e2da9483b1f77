/** Where and how to reach Redis, from a redis://, rediss:// or unix:// URL. */
export interface RedisEndpoint {
  /** With `socket`: 'localhost', unused. */
  readonly host: string;
  readonly port: number;
  /** A Unix socket's path (`unix:///run/redis.sock`): host and port are unused. */
  readonly socket?: string;
  readonly db: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  /** With Redis Sentinel: the primary is the one the sentinels name, not host:port. */
  readonly sentinel?: SentinelSettings;
}

/** Redis Sentinel as Sidekiq's configuration names it: `sentinels`, `master_name`, `sentinel_password`. */
export interface SentinelSettings {
  readonly sentinels: readonly SentinelAddress[];
  readonly masterName: string;
  /** The sentinels' own password, when they ask for one (Redis's own comes from the URL). */
  readonly password?: string;
}

export interface SentinelAddress {
  readonly host: string;
  readonly port: number;
}

const DEFAULT_SENTINEL_PORT = 26379;

/** `host`, `host:port` or `[v6]:port`, as a sentinel's address; port 26379 unless given. */
export function parseSentinelAddress(text: string): SentinelAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+))(?::(\d+))?$/.exec(text.trim());
  const port = Number(match?.[3] ?? DEFAULT_SENTINEL_PORT);
  if (match === null || port < 1 || port > 65_535)
    throw new Error('expected a sentinel address: host, host:port or [IPv6]:port (port 26379 unless given)');
  return { host: match[1] ?? match[2] ?? '', port };
}

/**
 * The endpoint with Sentinel: the primary named `masterName` (else the URL's host, as redis-rb reads
 * `redis://mymaster` beside its sentinels), with the URL's database, TLS and credentials.
 */
export function withSentinel(
  endpoint: RedisEndpoint | undefined,
  sentinel: Omit<SentinelSettings, 'masterName'> & { readonly masterName: string | undefined },
): RedisEndpoint {
  const masterName = sentinel.masterName ?? endpoint?.host;
  if (masterName === undefined) throw new Error('no master name: give it, or a Redis URL whose host is it');
  return {
    ...(endpoint ?? { host: masterName, port: DEFAULT_PORT, db: 0, tls: false }),
    sentinel: { ...sentinel, masterName },
  };
}

const DEFAULT_PORT = 6379;
const URL_FORM = 'redis://[[user]:password@]host[:port][/db], rediss://... for TLS, or unix:///path[?db=N]';

/**
 * Parses a Redis URL the way Sidekiq's redis-client reads REDIS_URL: a lone user part
 * (`redis://secret@host`) is the password; the database is the path (`/1`), else the `db` query parameter
 * (`unix:///run/redis.sock?db=1`). Error messages never quote the URL: it may hold a password.
 */
export function parseRedisUrl(text: string): RedisEndpoint {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new Error(`expected ${URL_FORM}`);
  }
  if (url.protocol === 'unix:') return unixSocket(url);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`expected ${URL_FORM}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new Error(`no host: expected ${URL_FORM}`);
  return {
    host,
    port: parsePort(url.port),
    db: parseDb(url.pathname.replace(/^\//, ''), url),
    tls: url.protocol === 'rediss:',
    ...credentials(url),
  };
}

/** `unix:///path/to/redis.sock?db=1` (a host before the path is refused: a socket is always local). */
function unixSocket(url: URL): RedisEndpoint {
  if (url.hostname !== '') throw new Error(`a unix:// URL names a path, not a host: expected unix:///path[?db=N]`);
  const socket = decodePart(url.pathname);
  if (socket === '' || socket === '/') throw new Error('no socket path: expected unix:///path[?db=N]');
  return { host: 'localhost', port: DEFAULT_PORT, socket, db: parseDb('', url), tls: false, ...credentials(url) };
}

function parsePort(port: string): number {
  if (port === '') return DEFAULT_PORT;
  if (Number(port) === 0) throw new Error('the port must be 1 to 65535');
  return Number(port);
}

/** The path's database index, else the `db` query parameter's, else 0. */
function parseDb(path: string, url: URL): number {
  if (path !== '') {
    if (!/^\d+$/.test(path)) throw new Error('the path must be a database index such as /1');
    return Number(path);
  }
  const db = url.searchParams.get('db') ?? '';
  if (db === '') return 0;
  if (!/^\d+$/.test(db)) throw new Error('the db parameter must be a database index such as ?db=1');
  return Number(db);
}

function credentials(url: URL): { username?: string; password?: string } {
  const user = decodePart(url.username);
  const password = decodePart(url.password);
  if (password !== '') return user === '' ? { password } : { username: user, password };
  return user === '' ? {} : { password: user };
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Error('the user or password has a malformed %-escape');
  }
}

/** The URL as logs and errors may show it: `redis://user:***@host:6379/1`; unparseable text loses everything before its last `@`. */
export function redactRedisUrl(text: string): string {
  try {
    return describeEndpoint(parseRedisUrl(text));
  } catch {
    return redactUserinfo(text);
  }
}

/** `redis://user:***@host:6379/1`; with Sentinel `redis://:***@mymaster/0 via sentinels 10.0.0.1:26379,10.0.0.2:26379`. */
export function describeEndpoint(endpoint: RedisEndpoint): string {
  const scheme = endpoint.tls ? 'rediss' : 'redis';
  const auth = endpoint.password === undefined ? '' : `${endpoint.username ?? ''}:***@`;
  if (endpoint.socket !== undefined && endpoint.sentinel === undefined)
    return `unix://${auth}${endpoint.socket}?db=${endpoint.db}`;
  const bracketed = (host: string): string => (host.includes(':') ? `[${host}]` : host);
  const { sentinel } = endpoint;
  if (sentinel === undefined) return `${scheme}://${auth}${bracketed(endpoint.host)}:${endpoint.port}/${endpoint.db}`;
  const sentinels = sentinel.sentinels.map((address) => `${bracketed(address.host)}:${address.port}`).join(',');
  return `${scheme}://${auth}${sentinel.masterName}/${endpoint.db} via sentinels ${sentinels}`;
}

function redactUserinfo(text: string): string {
  const at = text.lastIndexOf('@');
  if (at === -1) return text;
  const slashes = text.indexOf('//');
  const scheme = slashes === -1 || slashes > at ? '' : text.slice(0, slashes + 2);
  return `${scheme}***${text.slice(at)}`;
}
