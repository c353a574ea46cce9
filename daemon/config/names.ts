import { z } from 'zod';

/**
 * The naming rules the configuration, job files and the API's wire format share. A module of their
 * own, apart from the configuration schema, so the client (and `batch`) can check names without
 * building the daemon's whole configuration schema.
 */

/** Names that become folder or file names: no dots first, no slashes, nothing that escapes. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const name = z
  .string()
  .regex(NAME_PATTERN, 'Expected a name of letters, digits, "_", "." or "-" (max 64)');
export const identifier = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,63}$/,
    'Expected an identifier (letters, digits, "_"; not starting with a digit)',
  );

export const WEEKDAYS = [
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday',
  'Sunday',
] as const;
export type Weekday = (typeof WEEKDAYS)[number];
