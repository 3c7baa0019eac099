// Multi-document YAML in, multi-document YAML out (`meshauth inject` / `uninject`). Each document keeps its text
// when nothing in it changes; a changed one is edited node by node from the JSON Patch of its change, so comments,
// key order and quoting elsewhere in it survive. Pure: text in, text out.
import { type Document, isMap, isScalar, isSeq, type Node } from 'yaml';
import { parseBoundedDocument } from '../config/yaml-text.js';
import { MeshauthError } from '../errors/index.js';
import type { InjectConfig } from './inject-config.js';
import { deepEqual, isObject } from './inject-json.js';
import { diffJson, type PatchOperation, parsePointer } from './inject-json-patch.js';
import { injectObjects, type ObjectOutcome, type ObjectResult, uninjectObject } from './inject-object.js';

export interface YamlResult {
  readonly text: string;
  readonly warnings: readonly string[];
  /** How many documents ended in each outcome. */
  readonly counts: Readonly<Partial<Record<ObjectOutcome, number>>>;
}

/** Kubernetes reads YAML 1.1 (`on`, `yes` are booleans there): parse and write the same way. */
const YAML_OPTIONS = { version: '1.1', prettyErrors: false } as const;
const OUTPUT_OPTIONS = { lineWidth: 0, flowCollectionPadding: false } as const;

interface Chunk {
  readonly text: string;
  /** 1-based line of the chunk's first line in the whole input. */
  readonly line: number;
  /** 1-based document number for messages, undefined for a prelude holding only comments. */
  readonly index: number | undefined;
}

export function injectYaml(text: string, config: InjectConfig): YamlResult {
  return transform(text, (objects) => injectObjects(objects, config));
}

export function uninjectYaml(text: string): YamlResult {
  return transform(text, (objects) => objects.map((o) => uninjectObject(o)));
}

function transform(text: string, run: (objects: readonly unknown[]) => ObjectResult[]): YamlResult {
  const chunks = splitDocuments(text);
  const docs = chunks.map((chunk) => parseChunk(chunk));
  const objects = docs.map((doc, i) => documentValue(doc, chunks[i] as Chunk));
  const results = run(objects);
  const counts: Partial<Record<ObjectOutcome, number>> = {};
  const out: string[] = [];
  chunks.forEach((chunk, i) => {
    const result = results[i] as ObjectResult;
    const doc = docs[i] as Document;
    if (isObject(objects[i])) counts[result.outcome] = (counts[result.outcome] ?? 0) + 1;
    const ops = diffJson(objects[i], result.object);
    if (ops.length === 0) {
      out.push(chunk.text);
      return;
    }
    out.push(editedText(doc, ops, result.object));
  });
  return { text: out.join(''), warnings: results.flatMap((r) => r.warnings), counts };
}

/**
 * The document with the operations applied node by node; when that does not give exactly `expected` (anchors and
 * aliases share nodes, merge keys are not nodes of their own), the document is written afresh from `expected`:
 * correct output wins over kept comments.
 */
function editedText(doc: Document, ops: readonly PatchOperation[], expected: unknown): string {
  const original = doc.clone();
  try {
    applyToDocument(doc, ops);
    if (deepEqual(doc.toJS({ maxAliasCount: 100 }), expected)) return doc.toString(OUTPUT_OPTIONS);
  } catch {
    // fall through to the rewrite
  }
  original.contents = original.createNode(expected, { aliasDuplicateObjects: false }) as Node;
  return original.toString(OUTPUT_OPTIONS);
}

/**
 * Splits at `---` lines. A marker line at column 0 always ends a document, even inside what
 * would be a block scalar, so a line test is exact and keeps each document's text byte for byte.
 */
export function splitDocuments(text: string): Chunk[] {
  const lines = text.split(/(?<=\n)/);
  const chunks: Chunk[] = [];
  let current = '';
  let startLine = 1;
  let index = 0;
  const flush = (lineNo: number, isPrelude: boolean) => {
    const meaningful = current.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    if (current !== '' || !isPrelude) {
      chunks.push({ text: current, line: startLine, index: isPrelude && !meaningful ? undefined : ++index });
    }
    current = '';
    startLine = lineNo;
  };
  lines.forEach((line, i) => {
    if (/^---(?:[ \t]|\r?\n|$)/.test(line)) flush(i + 1, chunks.length === 0);
    current += line;
  });
  flush(lines.length + 1, chunks.length === 0);
  return chunks;
}

/**
 * The chunk's document, read within the config files' bounds (config/yaml-text.ts): nesting past 64 levels overflowed
 * yaml's recursion (on Node 20 an abort, not exit 2), and each alias past 100 cost a scan of the document.
 */
function parseChunk(chunk: Chunk): Document {
  const parsed = parseBoundedDocument(chunk.text, YAML_OPTIONS);
  if (!parsed.ok) {
    const { problem } = parsed;
    const line = chunk.line + problem.line - 1;
    const reason = problem.code === 'NESTING_TOO_DEEP' ? 'manifest_too_deep' : 'manifest_too_many_aliases';
    throw new MeshauthError(
      'MESHAUTH_ERR_MANIFEST_INVALID',
      `document ${chunk.index ?? 1} (starting at line ${chunk.line}): line ${line}: ${problem.message}`,
      { reason, detail: { document: chunk.index, line } },
    );
  }
  const doc = parsed.document;
  const error = doc.errors[0];
  if (error !== undefined) {
    const offset = error.pos[0];
    const line = chunk.line + (chunk.text.slice(0, offset).match(/\n/g)?.length ?? 0);
    throw new MeshauthError(
      'MESHAUTH_ERR_MANIFEST_INVALID',
      `document ${chunk.index ?? 1} (starting at line ${chunk.line}): not valid YAML at line ${line}: ${error.message.split('\n', 1)[0]}`,
      { reason: 'manifest_yaml', detail: { document: chunk.index, line } },
    );
  }
  return doc;
}

/**
 * The document's value. Few aliases can still expand without bound when each names a list of the one before (seven
 * levels of nine: 54 aliases, 9^7 values): yaml refuses that expansion with a ReferenceError of its own, which is
 * the manifest's fault like any other bound, not an internal error.
 */
function documentValue(doc: Document, chunk: Chunk): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (error) {
    if (!(error instanceof ReferenceError && /alias/i.test(error.message))) throw error;
    throw new MeshauthError(
      'MESHAUTH_ERR_MANIFEST_INVALID',
      `document ${chunk.index ?? 1} (starting at line ${chunk.line}): its aliases (*name) expand to too many values: expected each alias to stand for a small part of the document`,
      { reason: 'manifest_too_many_aliases', detail: { document: chunk.index } },
    );
  }
}

/** Applies JSON Patch operations to the document's nodes (a replaced scalar keeps its quoting style). */
export function applyToDocument(doc: Document, ops: readonly PatchOperation[]): void {
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    const last = tokens.pop();
    if (last === undefined) {
      if (op.op === 'remove') doc.contents = null;
      else doc.contents = doc.createNode(op.value) as Node;
      continue;
    }
    const parent = nodeAt(doc, tokens, op.path);
    if (isSeq(parent)) {
      const at = last === '-' ? parent.items.length : Number(last);
      if (op.op === 'add') parent.items.splice(at, 0, doc.createNode(op.value));
      else if (op.op === 'remove') parent.items.splice(at, 1);
      else replaceItem(doc, parent.items, at, op.value);
    } else if (isMap(parent)) {
      if (op.op === 'remove') parent.delete(last);
      else if (op.op === 'replace' && isScalar(parent.get(last, true)) && !isObjectLike(op.value)) {
        (parent.get(last, true) as { value: unknown }).value = op.value;
      } else parent.set(doc.createNode(last), doc.createNode(op.value));
    } else {
      throw new TypeError(`patch path ${op.path} does not lead to a mapping or sequence`);
    }
  }
}

function replaceItem(doc: Document, items: unknown[], at: number, value: unknown): void {
  const current = items[at];
  if (isScalar(current) && !isObjectLike(value)) current.value = value;
  else items[at] = doc.createNode(value);
}

function nodeAt(doc: Document, tokens: readonly string[], path: string): unknown {
  let node: unknown = doc.contents;
  for (const token of tokens) {
    if (isSeq(node)) node = node.items[Number(token)];
    else if (isMap(node)) node = node.get(token, true);
    else throw new TypeError(`patch path ${path} does not exist in the document`);
  }
  return node;
}

function isObjectLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}
