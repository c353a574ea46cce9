import type { Hono } from 'hono';

import type { ScheduleInfo } from '../../protocol/config.ts';
import type { ApiEnv } from '../context.ts';
import { batchdBody, done, type Face, pick, seg } from './face.ts';

/** batchd's ScheduleInfo: `{name, weekdays, time: [{begin, end}]}`, null meaning "any". */
export function registerBatchdSchedules(app: Hono<ApiEnv>, face: Face): void {
  const { native } = face;

  app.get('/schedule', async (c) => {
    const schedules = await native.call<ScheduleInfo[]>(c, 'GET', '/schedule');
    return c.json(
      schedules.map((s) => ({ name: s.name, weekdays: s.weekdays, time: s.time })),
      200,
    );
  });

  app.post('/schedule', async (c) => {
    const body = await batchdBody(face, c);
    const created = await native.call<ScheduleInfo>(
      c,
      'POST',
      '/schedule',
      pick(body, ['name', 'weekdays', 'time']),
    );
    return c.json(created.name, 200);
  });

  app.delete('/schedule/:n', async (c) => {
    const forced = c.req.query('forced');
    const tail = forced === undefined ? '' : `?forced=${encodeURIComponent(forced)}`;
    await native.call(c, 'DELETE', `/schedule/${seg(c.req.param('n'))}${tail}`);
    return done(c);
  });
}
