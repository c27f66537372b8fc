// api.js: the dispatcher's HTTP API as the pages use it (docs/PROTOCOL.md).
// Every call rejects with an ApiError whose code is the server's error code,
// or "unreachable" when the server did not answer at all.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
  /** True when the player token was refused (log in again). */
  get unauthorized() { return this.status === 401; }
  get unreachable() { return this.code === 'unreachable'; }
}

/** request sends a JSON request and returns the decoded JSON answer. */
export async function request(method, path, { token, body, timeoutMs = 10000 } = {}) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, signal: ctl.signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'the arena server did not answer');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  const text = await resp.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    const code = (data && data.code) || ('http_' + resp.status);
    const msg = (data && data.message) || resp.statusText || 'request failed';
    throw new ApiError(resp.status, code, msg);
  }
  return data;
}

/** login asks for a guest identity: {uuid, username, photo, score, token}. */
export function login(username, photo) {
  return request('POST', '/v1/login', { body: { username, photo } });
}

/** me returns the player's record: {uuid, username, photo, score, games, wins}. */
export function me(token) {
  return request('GET', '/v1/me', { token });
}

/**
 * config returns where the other servers are: {chat: "ws://host:port/ws", ...}.
 * A dispatcher without /v1/config gets the documented default: the chat
 * server on port 7600 of this page's host.
 */
export async function config() {
  try {
    return await request('GET', '/v1/config');
  } catch (e) {
    if (e.unreachable) throw e;
    return { chat: `ws://${location.hostname}:7600/ws` };
  }
}

/** enterMap asks where map id (or "start") lives: {map, addr, ticket, resumed}. */
export function enterMap(token, id) {
  return request('GET', `/v1/maps/${encodeURIComponent(id || 'start')}/enter`, { token });
}

/** maps lists the world: {start, maps: [{id, name, width, height, portals}]}. */
export function maps() {
  return request('GET', '/v1/maps');
}

/** playURL is the dispatcher's /v1/play WebSocket for token. */
export function playURL(token) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/v1/play?token=${encodeURIComponent(token)}`;
}

/** withQuery appends key=value to a ws:// URL. */
export function withQuery(url, key, value) {
  const u = new URL(url, location.href);
  u.searchParams.set(key, value);
  return u.toString();
}
