import { describe, expect, it } from 'vitest';

import { fitToWidth, makeProgress, type Output } from '../../daemon/cli/output.ts';

const PLAIN = { perColumn: 2, fixed: -2 };

describe('tables that fit the terminal', () => {
  const rows = [
    ['id', 'status', 'notes'],
    ['20261206T220242.983Z-5rte15', 'done', 'a note far too long for the narrow terminal it is shown on'],
  ];

  it('cuts only the free-text columns, with …, until the table fits', () => {
    const fitted = fitToWidth(rows, 50, PLAIN);
    expect(fitted[1]?.[0]).toBe('20261206T220242.983Z-5rte15');
    expect(fitted[1]?.[2]).toMatch(/…$/);
    const width = (fitted[1] ?? []).reduce((sum, cell) => sum + cell.length, 0) + 2 * 2;
    expect(width).toBeLessThanOrEqual(50);
  });

  it('leaves the table whole without a width (a pipe, or --wide)', () => {
    expect(fitToWidth(rows, undefined, PLAIN)).toEqual(rows);
  });
});

describe('progress on a terminal', () => {
  const out = { quiet: false } as Output;
  const stream = (isTTY: boolean) => {
    const written: string[] = [];
    return {
      written,
      stream: { isTTY, write: (text: string) => written.push(text) > 0 } as unknown as NodeJS.WriteStream,
    };
  };

  it('redraws one line in place and clears it at the end', () => {
    const tty = stream(true);
    const progress = makeProgress(out, tty.stream);
    progress.show('waiting: 0 of 2 finished');
    progress.show('waiting: 1 of 2 finished');
    progress.end();
    expect(tty.written).toEqual([
      '\r\u001b[Kwaiting: 0 of 2 finished',
      '\r\u001b[Kwaiting: 1 of 2 finished',
      '\r\u001b[K',
    ]);
  });

  it('writes nothing into a pipe or with --quiet', () => {
    const pipe = stream(false);
    makeProgress(out, pipe.stream).show('waiting');
    const quiet = stream(true);
    makeProgress({ quiet: true } as Output, quiet.stream).show('waiting');
    expect([...pipe.written, ...quiet.written]).toEqual([]);
  });
});
