import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { EventBus } from '../../daemon/events.ts';
import { HostStates } from '../../daemon/hosts/states.ts';

describe('what the daemon believes about a host', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function make(): { states: HostStates; events: string[]; retries: () => number } {
    const bus = new EventBus(() => undefined);
    const events: string[] = [];
    bus.on('host:state', (e) => events.push(`${e.host}:${e.state}`));
    let retries = 0;
    const states = new HostStates(bus, pino({ level: 'silent' }), () => (retries += 1));
    return { states, events, retries: () => retries };
  }

  const backoff = { initial: 1000, max: 5000 };

  it('lets one job find out about a host not known to be up, and all of them once it is up', () => {
    const { states, events } = make();
    expect(states.admits('h', 0, undefined)).toBe(true);
    expect(states.admits('h', 1, undefined)).toBe(false);
    states.ready('h');
    expect(states.admits('h', 7, undefined)).toBe(true);
    expect(states.admits('h', 3, 3)).toBe(false);
    expect(events).toEqual(['h:ready']);
  });

  it('takes no job during the back-off, then one probe; the back-off doubles up to its max and resets when up', () => {
    vi.useFakeTimers();
    const { states, retries } = make();
    states.failed('h', 'refused', backoff);
    expect(states.admits('h', 0, undefined)).toBe(false);
    vi.advanceTimersByTime(1010);
    expect(retries()).toBe(1);
    expect(states.admits('h', 0, undefined)).toBe(true);
    expect(states.admits('h', 1, undefined)).toBe(false);
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      states.failed('h', 'refused', backoff);
      waits.push((states.get('h').retryAt ?? 0) - Date.now());
      vi.advanceTimersByTime(waits.at(-1) ?? 0);
    }
    expect(waits).toEqual([2000, 4000, 5000, 5000]);
    states.ready('h');
    states.failed('h', 'refused', backoff);
    expect((states.get('h').retryAt ?? 0) - Date.now()).toBe(1000);
  });

  it('counts jobs that lost one connection together as one outage', () => {
    vi.useFakeTimers();
    const { states, events } = make();
    states.ready('h');
    for (let i = 0; i < 8; i++) states.failed('h', 'connection lost', backoff);
    expect(states.get('h')).toMatchObject({ state: 'failed', failures: 1 });
    expect(events).toEqual(['h:ready', 'h:failed']);
  });

  it('takes no job while a provider stops the host, and looks again once it is stopped', () => {
    const { states, retries } = make();
    states.ready('h');
    states.transition('h', 'stopping', 'idle');
    expect(states.admits('h', 0, undefined)).toBe(false);
    const before = retries();
    states.transition('h', 'stopped');
    expect(retries()).toBe(before + 1);
    expect(states.admits('h', 0, undefined)).toBe(true);
  });
});
