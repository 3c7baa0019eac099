// The compiled form of a policy: rules as matcher functions plus an index from peer (and method) to the few rules
// that can apply, so a decision never scans every rule (the target is ≤ 10 µs median with 1,000 rules). Pure.

import type { SpiffeId } from '../../identity/index.js';
import type { AuthzRequest } from '../authz-request.js';
import type { Decision, PolicyMode, RuleAction } from './decision.js';
import { RequestContext } from './request-context.js';

/** One condition of a rule: the field it comes from, what it expects, and how to test and show a request. */
export interface Check {
  /** e.g. `to.paths`, `when.user.scope`. */
  readonly field: string;
  readonly expected: string;
  test(request: AuthzRequest, context: RequestContext): boolean;
  actual(request: AuthzRequest, context: RequestContext): string;
}

export interface CompiledRule {
  readonly name: string;
  readonly index: number;
  readonly action: RuleAction;
  /** `from.*`: decided once per peer and cached in the index. */
  readonly peerChecks: readonly Check[];
  /** False for `undefined` (no mTLS peer) whenever the rule has `from`. */
  readonly testPeer: (peer: SpiffeId | undefined) => boolean;
  /** `to.methods`, or undefined when any method matches. Decided by the index. */
  readonly methods: ReadonlySet<string> | undefined;
  readonly methodCheck: Check | undefined;
  /** Every other condition, evaluated per request (cheap ones first). */
  readonly checks: readonly Check[];
  /** Where the index files this rule: exact IDs, ID prefixes, namespaces, trust domains, or nowhere (any peer). */
  readonly indexKeys: IndexKeys;
  /** The frozen result returned when this rule decides. */
  readonly decision: Decision;
}

export interface IndexKeys {
  readonly ids: readonly string[];
  readonly idPrefixes: readonly string[];
  readonly namespaces: readonly string[];
  readonly trustDomains: readonly string[];
}

export interface RuleLists {
  /** In file order. Denies are evaluated first: any matching deny wins. */
  readonly denies: readonly CompiledRule[];
  readonly allows: readonly CompiledRule[];
}

interface PeerRules {
  readonly byMethod: Map<string, RuleLists>;
  readonly anyMethod: RuleLists;
  readonly rules: readonly CompiledRule[];
}

const SCHEME_LENGTH = 'spiffe://'.length;
/** Peers are authenticated workloads, so the set is small; the bound only stops growth in a pathological mesh. */
const MAX_CACHED_PEERS = 10_000;
/** The cache key of "no mTLS peer": a SPIFFE ID is never empty. */
const NO_PEER_KEY = '';

export interface CompiledPolicyInit {
  readonly name: string | undefined;
  readonly mode: PolicyMode;
  readonly exposeRuleNames: boolean;
  readonly rules: readonly CompiledRule[];
  readonly defaultDecision: Decision;
}

export class CompiledPolicy {
  readonly name: string | undefined;
  readonly mode: PolicyMode;
  /** Whether the sidecar may show the deciding rule's name to a denied client (default false). */
  readonly exposeRuleNames: boolean;
  readonly rules: readonly CompiledRule[];
  readonly defaultDecision: Decision;
  /** Scratch state for one decision at a time (decide() is synchronous). */
  readonly context = new RequestContext();

  readonly #byId = new Map<string, CompiledRule[]>();
  readonly #byIdPrefix = new Map<string, CompiledRule[]>();
  readonly #byNamespace = new Map<string, CompiledRule[]>();
  readonly #byTrustDomain = new Map<string, CompiledRule[]>();
  readonly #anyPeer: CompiledRule[] = [];
  /** Methods named by some rule: only these get their own cached list (methods are attacker-chosen). */
  readonly #methods = new Set<string>();
  readonly #peers = new Map<string, PeerRules>();

  constructor(init: CompiledPolicyInit) {
    this.name = init.name;
    this.mode = init.mode;
    this.exposeRuleNames = init.exposeRuleNames;
    this.rules = init.rules;
    this.defaultDecision = init.defaultDecision;
    for (const rule of init.rules) this.#file(rule);
  }

  get enforced(): boolean {
    return this.mode === 'enforce';
  }

  /**
   * The rules whose `from` and `to.methods` accept this peer and method, denies and allows apart. Without a peer
   * (a request from the external listener) only the rules without `from` apply.
   */
  rulesFor(peer: SpiffeId | undefined, method: string): RuleLists {
    const key = peer === undefined ? NO_PEER_KEY : peer.toString();
    let entry = this.#peers.get(key);
    if (entry === undefined) {
      if (this.#peers.size >= MAX_CACHED_PEERS) this.#peers.clear();
      entry = this.#peerRules(peer, key);
      this.#peers.set(key, entry);
    }
    if (!this.#methods.has(method)) return entry.anyMethod;
    let lists = entry.byMethod.get(method);
    if (lists === undefined) {
      lists = split(entry.rules.filter((r) => r.methods === undefined || r.methods.has(method)));
      entry.byMethod.set(method, lists);
    }
    return lists;
  }

  #file(rule: CompiledRule): void {
    if (rule.methods !== undefined) for (const m of rule.methods) this.#methods.add(m);
    const keys = rule.indexKeys;
    const buckets: [Map<string, CompiledRule[]>, readonly string[]][] = [
      [this.#byId, keys.ids],
      [this.#byIdPrefix, keys.idPrefixes],
      [this.#byNamespace, keys.namespaces],
      [this.#byTrustDomain, keys.trustDomains],
    ];
    let filed = false;
    for (const [map, values] of buckets) {
      for (const value of values) {
        const bucket = map.get(value);
        if (bucket === undefined) map.set(value, [rule]);
        else bucket.push(rule);
        filed = true;
      }
    }
    if (!filed) this.#anyPeer.push(rule);
  }

  #peerRules(peer: SpiffeId | undefined, key: string): PeerRules {
    const candidates = new Set<CompiledRule>(this.#anyPeer);
    if (peer === undefined) return rulesOf([...candidates].filter((r) => r.testPeer(undefined)));
    const add = (rules: readonly CompiledRule[] | undefined): void => {
      if (rules !== undefined) for (const r of rules) candidates.add(r);
    };
    add(this.#byId.get(key));
    for (let slash = key.indexOf('/', SCHEME_LENGTH); slash !== -1; slash = key.indexOf('/', slash + 1)) {
      add(this.#byIdPrefix.get(key.slice(0, slash + 1)));
    }
    const namespace = peer.kubernetes?.namespace;
    if (namespace !== undefined) add(this.#byNamespace.get(namespace));
    add(this.#byTrustDomain.get(peer.trustDomain.name));
    return rulesOf([...candidates].filter((r) => r.testPeer(peer)));
  }
}

function rulesOf(candidates: readonly CompiledRule[]): PeerRules {
  const rules = [...candidates].sort((a, b) => a.index - b.index);
  return { byMethod: new Map(), anyMethod: split(rules.filter((r) => r.methods === undefined)), rules };
}

function split(rules: readonly CompiledRule[]): RuleLists {
  return { denies: rules.filter((r) => r.action === 'deny'), allows: rules.filter((r) => r.action === 'allow') };
}
