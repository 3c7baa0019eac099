// A listener's telemetry at shutdown: the refusal lines held back in the current window are summed in their one
// summary line when the listener closes, not lost with the process.
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { DataPlaneTelemetry } from '../../../src/sidecar/data-plane-telemetry.js';
import { TcpTelemetry } from '../../../src/sidecar/tcp/tcp-telemetry.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { logLines } from '../../helpers/log-lines.js';

describe('telemetry close()', () => {
  it('ok/a data listener writes the summary of the refusal lines it held back', () => {
    const log = logLines('sidecar');
    const telemetry = new DataPlaneTelemetry('outbound', new Metrics(), log.logger);
    for (let i = 0; i < 25; i++) {
      telemetry.rejected('', new MeshauthError('MESHAUTH_ERR_ROUTE_NOT_FOUND', 'no route'), performance.now());
    }
    telemetry.close();
    expect(log.lines.filter((l) => l.suppressed === 15 && l.code === 'MESHAUTH_ERR_ROUTE_NOT_FOUND')).toHaveLength(1);
  });

  it('ok/a TCP listener writes the summary of the refusal lines it held back', () => {
    const log = logLines('sidecar');
    const telemetry = new TcpTelemetry('outbound', new Metrics(), log.logger);
    for (let i = 0; i < 25; i++) telemetry.refused('', 'not_ready', { listen: '127.0.0.1:1' });
    telemetry.close();
    expect(log.lines.filter((l) => l.suppressed === 15 && l.result === 'not_ready')).toHaveLength(1);
  });
});
