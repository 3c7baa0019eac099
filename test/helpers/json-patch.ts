// A small RFC 6902 JSON Patch applier for tests (add, remove, replace, test, move, copy), written from the RFC so
// the webhook's patches are checked by code that does not share the diff's assumptions. Throws on any op that
// RFC 6902 §4/§5 says must fail (missing target, index out of range).

export type Operation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

export function applyJsonPatch(document: unknown, ops: readonly Operation[]): unknown {
  let doc = structuredClone(document);
  for (const op of ops) {
    switch (op.op) {
      case 'add':
        doc = add(doc, op.path, structuredClone(op.value));
        break;
      case 'remove':
        doc = remove(doc, op.path);
        break;
      case 'replace':
        doc =
          op.path === '' ? structuredClone(op.value) : add(remove(doc, op.path), op.path, structuredClone(op.value));
        break;
      case 'test':
        if (JSON.stringify(get(doc, op.path)) !== JSON.stringify(op.value))
          throw new Error(`test failed at ${op.path}`);
        break;
      case 'move': {
        const value = get(doc, op.from);
        doc = add(remove(doc, op.from), op.path, value);
        break;
      }
      case 'copy':
        doc = add(doc, op.path, structuredClone(get(doc, op.from)));
        break;
      default:
        throw new Error(`unknown op ${JSON.stringify(op)}`);
    }
  }
  return doc;
}

function tokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`invalid pointer ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function get(doc: unknown, pointer: string): unknown {
  let node = doc;
  for (const token of tokens(pointer)) {
    node = child(node, token, pointer);
  }
  return node;
}

function child(node: unknown, token: string, pointer: string): unknown {
  if (Array.isArray(node)) {
    const index = arrayIndex(token, node.length - 1, pointer);
    return node[index];
  }
  if (typeof node === 'object' && node !== null && Object.hasOwn(node, token)) {
    return (node as Record<string, unknown>)[token];
  }
  throw new Error(`no ${pointer}`);
}

function parentOf(doc: unknown, pointer: string): { parent: unknown; last: string } {
  const list = tokens(pointer);
  const last = list.pop();
  if (last === undefined) throw new Error('the root has no parent');
  let parent = doc;
  for (const token of list) parent = child(parent, token, pointer);
  return { parent, last };
}

function add(doc: unknown, pointer: string, value: unknown): unknown {
  if (pointer === '') return value;
  const { parent, last } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : arrayIndex(last, parent.length, pointer);
    parent.splice(index, 0, value);
  } else if (typeof parent === 'object' && parent !== null) {
    (parent as Record<string, unknown>)[last] = value;
  } else {
    throw new Error(`cannot add at ${pointer}`);
  }
  return doc;
}

function remove(doc: unknown, pointer: string): unknown {
  const { parent, last } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(last, parent.length - 1, pointer), 1);
  } else if (typeof parent === 'object' && parent !== null && Object.hasOwn(parent, last)) {
    delete (parent as Record<string, unknown>)[last];
  } else {
    throw new Error(`nothing to remove at ${pointer}`);
  }
  return doc;
}

function arrayIndex(token: string, max: number, pointer: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) > max) throw new Error(`bad array index in ${pointer}`);
  return Number(token);
}
