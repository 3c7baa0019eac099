// The outbound listener's connection cap as applied: its configured value, lowered where the open-file limit cannot hold
// it beside the inbound's cap, its app pool and the reserve (two descriptors a connection: an egress tunnel holds its
// upstream socket too). Found in review: the outbound had no cap at all, so the
// app's connections could take the descriptors the inbound was sized to have.
import { describe, expect, it } from 'vitest';
import { FD_RESERVE } from '../../../../src/sidecar/inbound/fd-budget.js';
import { outboundConnectionCap } from '../../../../src/sidecar/outbound/outbound-connection-cap.js';

describe('outboundConnectionCap', () => {
  const inbound = { maxConnections: 4096, appConnections: 128 };
  const cases: Array<[string, number | undefined, number]> = [
    ['ok/a container limit keeps the fixed cap', 1_048_576, 1024],
    ['ok/an unknown limit keeps the fixed cap', undefined, 1024],
    ['ok/a limit that holds both caps at two descriptors a connection keeps it', 4096 + 128 + FD_RESERVE + 2048, 1024],
    [
      'fail/a limit that holds the inbound and only part of it lowers it to what is left, two descriptors each',
      4096 + 128 + FD_RESERVE + 500,
      250,
    ],
    ['fail/a limit the inbound fills (bare shell) leaves a quarter of the reserve, two each', 1024, FD_RESERVE / 8],
  ];
  it.each(cases)('%s', (_name, limit, expected) => {
    expect(outboundConnectionCap(1024, limit, inbound)).toBe(expected);
  });

  it('ok/a lower configured value is kept when the limit holds it', () => {
    expect(outboundConnectionCap(4, 1024, inbound)).toBe(4);
  });
});

// The `outbound.tcp` listeners used to be outside the budget (each could hold 4096 tunnels, two descriptors each, any
// local process may connect): with `outbound.tcp` routes the outbound's descriptors are halved between them and the
// HTTP outbound listener.
describe("the outbound.tcp listeners' cap and the HTTP cap beside it", () => {
  const inbound = { maxConnections: 4096, appConnections: 128 };
  const left = 2_000;
  const limit = 4096 + 128 + FD_RESERVE + left;

  it('ok/a container limit keeps both configured caps', () => {
    expect(outboundConnectionCap(8192, 1_048_576, inbound, true)).toBe(8192);
    expect(outboundConnectionCap(1024, 1_048_576, inbound, true)).toBe(1024);
    expect(outboundConnectionCap(8192, undefined, inbound, true)).toBe(8192);
  });

  it('fail/a low limit gives each a quarter of what is left (half of it, two descriptors a connection)', () => {
    expect(outboundConnectionCap(8192, limit, inbound, true)).toBe(left / 4);
    expect(outboundConnectionCap(1024, limit, inbound, true)).toBe(left / 4);
    // Together they hold at most what is left: (500 + 500) connections × 2 descriptors.
    expect(
      (outboundConnectionCap(8192, limit, inbound, true) + outboundConnectionCap(1024, limit, inbound, true)) * 2,
    ).toBe(left);
    // Without TCP listeners the HTTP outbound keeps the whole share.
    expect(outboundConnectionCap(1024, limit, inbound)).toBe(left / 2);
  });

  it('fail/a limit the inbound fills leaves each a quarter of the reserve', () => {
    expect(outboundConnectionCap(8192, 900, inbound, true)).toBe(FD_RESERVE / 8);
  });
});
