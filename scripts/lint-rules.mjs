#!/usr/bin/env node
// Project lint rules that Biome cannot express (STYLE 9). Each rule says why it exists.
// Runs over src/ only; exits 1 listing every violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const PURE = [
  'src/identity/',
  'src/authz/policy/',
  'src/authz/decide',
  'src/authz/path',
  'src/k8s/inject',
  'src/pki/svid-validator',
];
const RULES = [
  {
    name: 'no-reject-unauthorized-false',
    why: 'peer verification must never be switched off in product code',
    test: (_file, text) => /rejectUnauthorized\s*:\s*false/.test(text),
  },
  {
    name: 'no-math-random',
    why: 'Math.random is not a CSPRNG; use node:crypto (randomBytes/randomInt) — jitter included, for one rule to remember',
    test: (_file, text) => /Math\.random\s*\(/.test(text),
  },
  {
    name: 'env-only-in-config',
    why: 'environment is read in one place (src/config) so every setting is documented and validated (STYLE 6)',
    test: (file, text) =>
      /process\.env\b/.test(text) && !file.startsWith('src/config/') && !file.startsWith('src/cli/'),
  },
  {
    name: 'pure-modules-no-io',
    why: 'identity, policy compile/decide, injection and SVID validation are pure: no fs, net, tls, http, child_process',
    test: (file, text) =>
      PURE.some((p) => file.startsWith(p)) &&
      /from ['"]node:(fs|fs\/promises|net|tls|http|https|http2|child_process|dgram)['"]/.test(text),
  },
  {
    name: 'exit-only-in-cli',
    why: 'only the CLI decides when the process ends (STYLE 7)',
    test: (file, text) => /process\.exit\s*\(/.test(text) && !file.startsWith('src/cli/'),
  },
];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const problems = [];
for (const path of walk(join(root, 'src'))) {
  const file = relative(root, path);
  const text = readFileSync(path, 'utf8');
  // A line may opt out of exactly the rule it names with `// lint-allow: <rule-name> — <why>` (reason required);
  // every other rule still sees the line, and an allow naming no known rule is itself a violation.
  const lines = text.split('\n');
  for (const match of text.matchAll(/lint-allow: ([a-z-]+)/g)) {
    if (!RULES.some((rule) => rule.name === match[1])) problems.push(`${file}: lint-allow names no rule "${match[1]}"`);
  }
  for (const rule of RULES) {
    const checked = lines.filter((line) => !new RegExp(`lint-allow: ${rule.name} — \\S`).test(line)).join('\n');
    if (rule.test(file, checked)) problems.push(`${file}: ${rule.name} — ${rule.why}`);
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`lint-rules: ${RULES.length} rules, no violations`);
