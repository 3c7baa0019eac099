// Policy conditions that name another trust domain than the mesh's own. Pure.
// meshauth has no federation: a peer's SVID is accepted only in the sidecar's trust domain (svid-validator), the
// origin of a passport chain is checked against the same bundle, and every later hop is a sidecar of the mesh. A
// condition on a foreign ID or trust domain therefore never holds: an allow rule that needs one never matches, and a
// `notIds` entry excludes nobody (a deny rule written to spare one caller denies them all).
import { trustDomainOfId } from '../../config/id-trust-domain.js';
import type { PolicyProblem } from './parse-policy.js';
import type { PolicyDocument } from './schema.js';

/** One problem per ID or trust domain of `document` outside `trustDomain` (a trust domain name). */
export function foreignIdProblems(document: PolicyDocument, trustDomain: string): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  for (const [index, rule] of document.rules.entries()) {
    const where = `rules[${index}] "${rule.name}"`;
    const ids = (field: string, values: readonly string[] | undefined, consequence: string) => {
      for (const [i, id] of (values ?? []).entries()) {
        const domain = trustDomainOfId(id);
        if (domain === trustDomain) continue;
        problems.push({
          rule: where,
          field: `${field}[${i}]`,
          message: `${id} is in trust domain ${domain}, not ${trustDomain}: no peer of another trust domain is ever accepted (meshauth has no federation), so ${consequence}`,
        });
      }
    };
    ids('from.ids', rule.from?.ids, 'it never matches');
    ids('from.notIds', rule.from?.notIds, 'it excludes no caller');
    ids('when.chain.includes', rule.when?.chain?.includes, 'no call chain has it');
    const startsWith = rule.when?.chain?.startsWith;
    ids('when.chain.startsWith', typeof startsWith === 'string' ? [startsWith] : startsWith, 'no call chain has it');
    for (const [i, domain] of (rule.from?.trustDomains ?? []).entries()) {
      if (domain === trustDomain) continue;
      problems.push({
        rule: where,
        field: `from.trustDomains[${i}]`,
        message: `${domain} is not the mesh's trust domain ${trustDomain}: no peer of another trust domain is ever accepted (meshauth has no federation), so it never matches`,
      });
    }
  }
  return problems;
}
