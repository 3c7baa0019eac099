// Claim conditions by dotted path (`tenant`, `realm_access.roles`), shared by the policy language
// (`when.user.claims`) and the gateway's route rules. Pure. Every listed path must hold every operator given:
//   equals: the claim is exactly this string, number or boolean
//   in:     the claim is one of these scalars
//   includes: the claim is an array (or a space-separated string, as OAuth `scope`) holding every listed value
//   prefix: the claim is a string starting with this (or an array with such an element)
// A missing claim never matches. Path segments are own properties only (no prototype lookups).
import { z } from 'zod';

export type ClaimScalar = string | number | boolean;

export interface ClaimCondition {
  readonly equals?: ClaimScalar | undefined;
  readonly in?: readonly ClaimScalar[] | undefined;
  readonly includes?: string | readonly string[] | undefined;
  readonly prefix?: string | undefined;
}

export type ClaimConditions = Readonly<Record<string, ClaimCondition>>;

const CLAIM_PATH = /^[A-Za-z0-9_:-]{1,64}(\.[A-Za-z0-9_:-]{1,64}){0,7}$/;
const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const claimConditionSchema = z
  .strictObject({
    equals: scalar.optional(),
    in: z.array(scalar).min(1, { error: 'must not be empty' }).optional(),
    includes: z.union([z.string(), z.array(z.string()).min(1, { error: 'must not be empty' })]).optional(),
    prefix: z.string().min(1, { error: 'must not be empty' }).optional(),
  })
  .refine((c) => c.equals !== undefined || c.in !== undefined || c.includes !== undefined || c.prefix !== undefined, {
    error: 'expected at least one of equals, in, includes, prefix',
  });

/** `{ "<dotted.path>": { equals | in | includes | prefix } }`; `__proto__` segments are refused. */
export const claimConditionsSchema = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'expected a claim path, not "__proto__"' });
    }
  })
  .pipe(
    z
      .record(
        z.string().refine((p) => CLAIM_PATH.test(p) && !p.split('.').includes('__proto__'), {
          message: 'expected a dotted claim path such as tenant or realm_access.roles',
        }),
        claimConditionSchema,
      )
      .refine((r) => Object.keys(r).length > 0, { error: 'must not be empty (omit the field instead)' }),
  );

/** The value at a dotted path of own properties, or undefined. */
export function claimAt(claims: Readonly<Record<string, unknown>> | undefined, path: string): unknown {
  let value: unknown = claims;
  for (const segment of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

export function claimMatches(condition: ClaimCondition, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (condition.equals !== undefined && value !== condition.equals) return false;
  if (condition.in !== undefined && !condition.in.includes(value as ClaimScalar)) return false;
  if (condition.includes !== undefined) {
    const wanted = typeof condition.includes === 'string' ? [condition.includes] : condition.includes;
    if (!wanted.every((w) => holds(value, w))) return false;
  }
  if (condition.prefix !== undefined) {
    const prefix = condition.prefix;
    const ok =
      typeof value === 'string'
        ? value.startsWith(prefix)
        : Array.isArray(value) && value.some((v) => typeof v === 'string' && v.startsWith(prefix));
    if (!ok) return false;
  }
  return true;
}

/** True when every path's condition holds for `claims`. */
export function claimsMatch(
  conditions: ClaimConditions,
  claims: Readonly<Record<string, unknown>> | undefined,
): boolean {
  if (claims === undefined) return false;
  for (const path of Object.keys(conditions)) {
    if (!claimMatches(conditions[path] as ClaimCondition, claimAt(claims, path))) return false;
  }
  return true;
}

/** A short description of a condition, for explain() and deny logs. */
export function describeClaimCondition(condition: ClaimCondition): string {
  const parts: string[] = [];
  if (condition.equals !== undefined) parts.push(`equals ${JSON.stringify(condition.equals)}`);
  if (condition.in !== undefined) parts.push(`in ${JSON.stringify(condition.in)}`);
  if (condition.includes !== undefined) parts.push(`includes ${JSON.stringify(condition.includes)}`);
  if (condition.prefix !== undefined) parts.push(`prefix ${JSON.stringify(condition.prefix)}`);
  return parts.join(' and ');
}

function holds(value: unknown, wanted: string): boolean {
  if (Array.isArray(value)) return value.includes(wanted);
  if (typeof value === 'string') return value === wanted || value.split(' ').includes(wanted);
  return false;
}
