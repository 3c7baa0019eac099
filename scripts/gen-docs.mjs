#!/usr/bin/env node
// Rewrites the generated blocks of README.md from the built code (run `npm run build` first):
// <!-- cli:start --> … <!-- cli:end -->       the commander help of every command
// <!-- config:start --> … <!-- config:end --> the sidecar config keys from the zod schema
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { buildProgram } = await import(new URL('dist/src/cli/program.js', root).href);
const { renderCliReference } = await import(new URL('dist/src/cli/reference.js', root).href);
const { renderConfigReference } = await import(new URL('dist/src/config/config-reference.js', root).href);

const readmeUrl = new URL('README.md', root);
let readme = readFileSync(readmeUrl, 'utf8');
readme = replaceBlock(readme, 'cli', renderCliReference(buildProgram()));
readme = replaceBlock(readme, 'config', renderConfigReference());
writeFileSync(readmeUrl, readme);
console.log('README.md: cli and config references regenerated');

function replaceBlock(text, name, content) {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from === -1 || to === -1) throw new Error(`README.md has no ${start} … ${end} block`);
  return `${text.slice(0, from + start.length)}\n${content}\n${text.slice(to)}`;
}
