/** Where and how to reach Redis, from a redis:// or rediss:// URL. */
export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
}

const DEFAULT_PORT = 6379;
const URL_FORM = 'redis://[[user]:password@]host[:port][/db] or rediss://... for TLS';

/**
 * Parses a Redis URL the way Sidekiq's redis-client reads REDIS_URL: a lone user part
 * (`redis://secret@host`) is the password. Error messages never quote the URL: it may hold a password.
 */
export function parseRedisUrl(text: string): RedisEndpoint {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new Error(`expected ${URL_FORM}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`expected ${URL_FORM}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new Error(`no host: expected ${URL_FORM}`);
  return {
    host,
    port: parsePort(url.port),
    db: parseDb(url.pathname),
    tls: url.protocol === 'rediss:',
    ...credentials(url),
  };
}

function parsePort(port: string): number {
  if (port === '') return DEFAULT_PORT;
  if (Number(port) === 0) throw new Error('the port must be 1 to 65535');
  return Number(port);
}

function parseDb(pathname: string): number {
  const db = pathname.replace(/^\//, '');
  if (db === '') return 0;
  if (!/^\d+$/.test(db)) throw new Error('the path must be a database index such as /1');
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

export function describeEndpoint(endpoint: RedisEndpoint): string {
  const scheme = endpoint.tls ? 'rediss' : 'redis';
  const auth = endpoint.password === undefined ? '' : `${endpoint.username ?? ''}:***@`;
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  return `${scheme}://${auth}${host}:${endpoint.port}/${endpoint.db}`;
}

function redactUserinfo(text: string): string {
  const at = text.lastIndexOf('@');
  if (at === -1) return text;
  const slashes = text.indexOf('//');
  const scheme = slashes === -1 || slashes > at ? '' : text.slice(0, slashes + 2);
  return `${scheme}***${text.slice(at)}`;
}
