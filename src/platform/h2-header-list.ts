// HTTP/2 header lists handed to node:http2 as flat arrays ([name, value, …]) where the runtime takes them: request()
// since Node 24.0 (22.17), a server stream's respond() since 24.7 (22.20). A proxy holds its headers as such a list
// already; as an object, node:http2 copies them once more into a null-prototype object and walks its keys, per call.
// On older runtimes (Node 20) the list becomes the object those take, duplicates merged into one array per name.
import type { OutgoingHttpHeaders } from 'node:http2';
import { type NodeReleases, nodeHas } from './node-version.js';

/** A flat HTTP/2 header list: lower-case names, pseudo-headers first, a name repeated for each of its values. */
export type H2HeaderList = string[];

export const RAW_REQUEST_SINCE: NodeReleases = [
  [22, 17],
  [24, 0],
];
export const RAW_RESPONSE_SINCE: NodeReleases = [
  [22, 20],
  [24, 7],
];

const rawRequests = nodeHas(RAW_REQUEST_SINCE);
const rawResponses = nodeHas(RAW_RESPONSE_SINCE);

/** `list` as ClientHttp2Session.request() takes it on this runtime. */
export function requestHeadersOf(list: H2HeaderList): OutgoingHttpHeaders {
  // The public types (Node 20's) know the object only; the array goes through unchanged where request() reads one.
  return rawRequests ? (list as unknown as OutgoingHttpHeaders) : headerObject(list);
}

/** `list` as ServerHttp2Stream.respond() takes it on this runtime. */
export function responseHeadersOf(list: H2HeaderList): OutgoingHttpHeaders {
  return rawResponses ? (list as unknown as OutgoingHttpHeaders) : headerObject(list);
}

/**
 * The object form of `list`. No prototype: the names come from the app or its caller (`__proto__` on a plain
 * object would replace its prototype, `constructor` would read Object's own function as an earlier value).
 */
export function headerObject(list: H2HeaderList): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] as string;
    const value = list[i + 1] as string;
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

/** A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it: name + value + 32 per field. */
export function headerListSize(list: H2HeaderList): number {
  let size = 0;
  for (let i = 0; i < list.length; i += 2) size += (list[i] as string).length + (list[i + 1] as string).length + 32;
  return size;
}
