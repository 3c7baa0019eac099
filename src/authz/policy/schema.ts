// The policy file schema: apiVersion meshauth.dev/v1, kind Policy. Pure. Strict: unknown keys are
// errors (a misspelt matcher must never be ignored and widen a rule). Validation only: defaults
// are applied by the compiler, not here (validating and defaulting are two steps).
import { z } from 'zod';
import { booleanFlag } from '../../config/boolean-flag.js';
import { MeshauthError } from '../../errors/index.js';
import { TrustDomain } from '../../identity/index.js';
import { validateMethod } from '../method-validate.js';
import { claimConditionsSchema } from './match-claims.js';
import { headerNameError } from './match-headers.js';
import { hostPatternError } from './match-host.js';
import { idPatternError } from './match-id.js';
import { parseCidr } from './match-ip.js';
import { pathPatternError } from './match-path.js';
import { isValidTimeZone, parseClock, WEEKDAYS } from './match-time.js';
import { reservedRule } from './reserved-rules.js';

export const RULE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

function checked(check: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const error = check(value);
    if (error !== undefined) ctx.addIssue({ code: 'custom', message: error });
  });
}

function list<T extends z.ZodType>(item: T) {
  return z.array(item).min(1, { error: 'must not be empty (omit the field instead)' });
}

// zod's record parsing drops an own `__proto__` key (which YAML produces) without validating it, so a condition
// written under that name would vanish and widen its rule (P11): refuse it before the record is parsed.
function refuseProtoKey(value: unknown, ctx: z.RefinementCtx): void {
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
    ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'expected an HTTP header name, not "__proto__"' });
  }
}

const idPattern = checked(idPatternError);
const namespace = checked((v) =>
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) && v.length <= 63
    ? undefined
    : 'expected a Kubernetes namespace (lower-case DNS label)',
);
const trustDomain = checked((v) => {
  try {
    TrustDomain.parse(v);
    return undefined;
  } catch (error) {
    return error instanceof MeshauthError ? error.message : 'invalid trust domain';
  }
});
const method = checked((v) => {
  try {
    validateMethod(v);
    return undefined;
  } catch {
    return 'expected an upper-case HTTP method like GET';
  }
});
const cidr = checked((v) => {
  const result = parseCidr(v);
  return typeof result === 'string' ? result : undefined;
});
const nonEmpty = z.string().min(1, { error: 'must not be empty' });

const timeWindow = z
  .strictObject({
    days: list(z.enum(WEEKDAYS)).optional(),
    from: checked((v) => (parseClock(v, false) === undefined ? 'expected a time "HH:MM" (00:00–23:59)' : undefined)),
    to: checked((v) => (parseClock(v, true) === undefined ? 'expected a time "HH:MM" (00:01–24:00)' : undefined)),
    timeZone: checked((v) =>
      isValidTimeZone(v) ? undefined : 'expected an IANA time zone like "Europe/Berlin"',
    ).optional(),
  })
  .superRefine((w, ctx) => {
    // A whole day is a meaningful window when it names days ("weekends": Sat, Sun 00:00–24:00); on every day it
    // is the same as no `time`, which says it more plainly.
    const everyDay = w.days === undefined || new Set(w.days).size === WEEKDAYS.length;
    if (w.from === w.to || (w.from === '00:00' && w.to === '24:00' && everyDay)) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: 'an empty or every-day full-day window: omit `time` instead',
      });
    }
  });

export const ruleSchema = z.strictObject({
  name: z.string().regex(RULE_NAME, { error: 'expected 1–128 characters of [A-Za-z0-9._-]' }),
  action: z.enum(['allow', 'deny']),
  from: z
    .strictObject({
      ids: list(idPattern).optional(),
      notIds: list(idPattern).optional(),
      namespaces: list(namespace).optional(),
      trustDomains: list(trustDomain).optional(),
    })
    .optional(),
  to: z
    .strictObject({
      methods: list(method).optional(),
      paths: list(checked(pathPatternError)).optional(),
      hosts: list(checked(hostPatternError)).optional(),
      ports: list(z.int().min(1).max(65535)).optional(),
    })
    .optional(),
  when: z
    .strictObject({
      user: z
        .strictObject({
          sub: list(nonEmpty).optional(),
          iss: list(nonEmpty).optional(),
          scope: list(
            nonEmpty.regex(/^[!#-[\]-~]+$/, { error: 'a scope has no spaces, quotes or backslashes' }),
          ).optional(),
          groups: list(nonEmpty).optional(),
          client_id: list(nonEmpty).optional(),
          claims: claimConditionsSchema.optional(),
        })
        .optional(),
      headers: z
        .unknown()
        .superRefine(refuseProtoKey)
        .pipe(
          z
            .record(checked(headerNameError), list(z.string()))
            .refine((r) => Object.keys(r).length > 0, { error: 'must not be empty (omit the field instead)' }),
        )
        .optional(),
      sourceIps: list(cidr).optional(),
      time: z.union([timeWindow, list(timeWindow)]).optional(),
      chain: z
        .strictObject({
          includes: list(idPattern).optional(),
          startsWith: z.union([idPattern, list(idPattern)]).optional(),
        })
        .refine((c) => c.includes !== undefined || c.startsWith !== undefined, {
          error: 'expected `includes` and/or `startsWith`',
        })
        .optional(),
    })
    .optional(),
});

export const policySchema = z
  .strictObject({
    apiVersion: z.literal('meshauth.dev/v1'),
    kind: z.literal('Policy'),
    metadata: z.strictObject({ name: nonEmpty }).optional(),
    mode: z.enum(['enforce', 'audit']).optional(),
    exposeRuleNames: booleanFlag().optional(),
    rules: z.array(ruleSchema),
  })
  .superRefine((policy, ctx) => {
    const seen = new Set<string>();
    for (const [index, rule] of policy.rules.entries()) {
      const reserved = reservedRule(rule.name);
      if (reserved !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', index, 'name'],
          message:
            `"${rule.name}" is reserved (meshauth's name for ${reserved.decision}): a rule of that name would be ` +
            'mistaken for it in audit lines and metrics',
        });
      } else if (seen.has(rule.name)) {
        ctx.addIssue({ code: 'custom', path: ['rules', index, 'name'], message: `duplicate rule name "${rule.name}"` });
      }
      seen.add(rule.name);
    }
  });

export type PolicyDocument = z.infer<typeof policySchema>;
export type PolicyRule = z.infer<typeof ruleSchema>;
