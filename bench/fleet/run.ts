// Standalone entry of the fleet bench: `node dist/bench/fleet/run.js [--fleet N] [--quick]`; writes `fleet` into
// bench/results/latest.json (keeping the other scenarios' results) and prints the table.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fleetOptionsFromArgv, fleetTable, runFleet } from './fleet.js';

const RESULTS = fileURLToPath(new URL('../../../bench/results/latest.json', import.meta.url));

const result = await runFleet(fleetOptionsFromArgv(process.argv.slice(2)));
process.stdout.write(`${fleetTable(result)}\n`);
mkdirSync(fileURLToPath(new URL('.', `file://${RESULTS}`)), { recursive: true });
const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, unknown>) : {};
writeFileSync(RESULTS, `${JSON.stringify({ ...previous, fleet: result }, null, 2)}\n`);
process.exit(0);
