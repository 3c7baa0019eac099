// The few numbers the soak reads from a Prometheus text exposition (no label matching beyond "first sample of a
// name"): process_resident_memory_bytes, nodejs_heap_size_used_bytes, process_open_fds, nodejs_eventloop_lag_*.

/** name → value of the first sample with that exact metric name (labels ignored). */
export function parseSamples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const name = match[1] as string;
    if (!values.has(name)) values.set(name, Number(match[3]));
  }
  return values;
}

/** The sum of every sample of `name` whose labels contain `labelText` (e.g. `result="success"`). */
export function sumSamples(text: string, name: string, labelText = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match === null || match[1] !== name || !(match[2] ?? '').includes(labelText)) continue;
    sum += Number(match[3]);
  }
  return sum;
}
